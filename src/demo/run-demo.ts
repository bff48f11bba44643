// `sealer demo`: one night for the two sample tenants, with nothing to configure. Uses a local Redis
// (or a private one), the built-in sandbox provider (unless SEALER_PROVIDER_URL is set), fresh copies
// of fixtures/exports as the inbox, and the sealer's own key prefix (so `sealer runs` shows its night), clearing its
// own tenants' and jobs' state first.
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { startSandbox, type SandboxHandle } from '../sandbox';
import { createLogger } from '../common/logger';
import { connectRedis, resolveRedis } from '../common/redis';
import { clearDemoState } from './demo-state';
import { sealerCommandLine } from '../common/sealer-command';
import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../common/logger';
import { approveOnProviderPage, FactorVault, loadKek } from '../custody';
import { loadJobs, type JobDefinition } from '../jobs';
import { DEFAULT_PREFIX, openSealQueue, produceRun, runNight, type NightResult } from '../queue';
import { auditDir, MANIFEST_NAME, runReportDir } from '../outbox';
import { FileExistsError, writeFileExclusive } from '../outbox/atomic-write';
import { playApprover } from './play-approver';
import { ProgressLine } from './progress-line';

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

export interface DemoOptions {
  home: string;
  concurrency: number;
  prefix?: string;
  /** where the demo's lines go; default stdout */
  out?: (line: string) => void;
}

/** Each job's sample export, from fixtures/exports/<its folder's name> into its (fresh) folder. */
async function copyInbox(home: string, jobs: JobDefinition[]): Promise<void> {
  for (const folder of new Set(jobs.map((j) => j.exportFolder))) {
    const from = path.join(home, 'fixtures', 'exports', path.basename(folder));
    const to = folder;
    // The demo empties the folder first: never one outside its own var/.
    if (path.relative(path.join(home, 'var'), to).startsWith('..')) {
      throw new Error(`demo job folder ${to} is outside ${path.join(home, 'var')}: not emptying it`);
    }
    await fs.rm(to, { recursive: true, force: true });
    await fs.cp(from, to, { recursive: true });
    // What the core system does once an export is written: the sample jobs take an export only
    // when its marker (`export.ready.marker`, `.done`) stands beside it.
    for (const name of await fs.readdir(to)) {
      if (name.endsWith('.csv')) await fs.writeFile(path.join(to, `${name}.done`), '');
    }
  }
}

/** The demo's key-encryption key (var/kek, made once, mode 0600): what production keeps in a vault. */
async function ensureKek(varDir: string): Promise<string> {
  const file = path.join(varDir, 'kek');
  try {
    // Whole or not at all: a crash must not leave a short key that a later run would take as made.
    await writeFileExclusive(file, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    return `made a key-encryption key in ${file}`;
  } catch (err) {
    if (!(err instanceof FileExistsError)) throw err;
    return `key-encryption key ${file}`;
  }
}

async function readSecret(file: string): Promise<string> {
  return (await fs.readFile(file, 'utf8')).trim();
}

/**
 * Each tenant's custody, set up as its people would: a delegating tenant's factors go into the vault;
 * an approving tenant's approver approves tonight's seals on the provider's page (played by the demo).
 */
async function setUpCustody(
  jobs: JobDefinition[],
  sandbox: SandboxHandle,
  ctx: { redis: Redis; prefix: string; logger: Logger; home: string; say: (line: string) => void },
): Promise<number> {
  let approvals = 0;
  const secretsOf = (tenant: string) =>
    path.join(path.dirname(sandbox.rootCertPath), '..', 'secrets', tenant);
  const done = new Set<string>();
  for (const job of jobs) {
    const { credentialId, custody } = job.signing;
    // Two jobs of one tenant sealing with one credential (fuji's PDFs and its invoice data) share it.
    const key = `${job.tenant}\u0000${credentialId}`;
    if (done.has(key)) continue;
    done.add(key);
    const dir = secretsOf(job.tenant);
    if (custody.mode === 'provider-held') {
      const vault = new FactorVault(job.factorVaultDir!, await loadKek(custody.kek, job.baseDir));
      const stored = await vault.store(job.tenant, credentialId, {
        pin: await readSecret(path.join(dir, `${credentialId}.pin`)),
        totpSecret: await readSecret(path.join(dir, `${credentialId}.totp`)),
        totp: job.signing.totp,
      });
      ctx.say(
        `custody ${job.tenant}: provider-held; the tenant's PIN and TOTP secret are stored encrypted in ${path.relative(ctx.home, stored.file)} (as \`sealer factors set --tenant ${job.tenant}\` does)`,
      );
    } else if (custody.mode === 'approval') {
      const count = 40;
      let played: Promise<void> | undefined;
      const approval = await approveOnProviderPage({
        job,
        count,
        redis: ctx.redis,
        prefix: ctx.prefix,
        logger: ctx.logger,
        defaultProviderUrl: sandbox.url,
        timeoutMs: 60_000,
        showUrl: (url) => {
          ctx.say(
            `custody ${job.tenant}: approval; \`sealer approve --tenant ${job.tenant} --count ${count}\` opened the provider's page ${new URL(url).origin}/oauth2/authorize?...`,
          );
          ctx.say(
            `  the demo plays ${job.tenant}'s approver: PIN and one-time code typed on the sandbox's page, never given to the application`,
          );
          played = (async () => {
            await playApprover(
              url,
              {
                pin: await readSecret(path.join(dir, `${credentialId}.pin`)),
                totpSecret: await readSecret(path.join(dir, `${credentialId}.totp`)),
              },
              `approver@${job.tenant}.example (played by the demo)`,
            );
          })();
        },
      });
      await played;
      approvals++;
      ctx.say(
        `  approved ${approval.numSignatures} seals by ${approval.approvedBy ?? 'an approver the provider did not name'} until ${new Date(approval.expiresAt).toISOString()}; parked encrypted in Redis for the workers`,
      );
    } else {
      ctx.say(`custody ${job.tenant}: ${custody.mode}`);
    }
  }
  return approvals;
}

export async function runDemo(o: DemoOptions): Promise<NightResult> {
  const home = path.resolve(o.home);
  const varDir = path.join(home, 'var');
  await fs.mkdir(varDir, { recursive: true });
  const logFile = path.join(varDir, 'demo.log');
  const logger = createLogger({
    destination: pino.destination({ dest: logFile, sync: true, append: false }),
  });
  // The sealer's own prefix, so that `sealer runs` and `sealer failed` show the demo's night.
  const prefix = o.prefix ?? process.env.SEALER_PREFIX ?? DEFAULT_PREFIX;
  const say = o.out ?? ((line: string) => process.stdout.write(line + '\n'));

  const endpoint = await resolveRedis({ allowPrivate: true });
  say(
    `redis: ${endpoint.origin === 'private' ? `started a private redis-server at ${endpoint.url}` : endpoint.url}`,
  );
  const redis = connectRedis(endpoint.url);
  let sandbox: SandboxHandle | undefined;
  try {
    let providerUrl = process.env.SEALER_PROVIDER_URL;
    if (!providerUrl) {
      sandbox = await startSandbox({
        dataDir: path.join(varDir, 'sandbox'),
        port: 0,
        logger: logger.child({ part: 'sandbox' }),
      });
      providerUrl = sandbox.url;
      say(
        `provider: built-in sandbox at ${sandbox.url} (root certificate ${path.relative(home, sandbox.rootCertPath)})`,
      );
    } else {
      say(`provider: ${providerUrl}`);
    }
    say(await ensureKek(varDir));
    const jobs = await loadJobs(path.join(home, 'jobs'));
    const tenants = [...new Set(jobs.map((j) => j.tenant))];
    const cleared = await clearDemoState(
      redis,
      prefix,
      tenants,
      jobs.map((j) => j.name),
    );
    say(
      `demo state: prefix "${prefix}" (${cleared} keys of an earlier demo's tenants cleared), fresh var/inbox and var/outbox`,
    );
    await fs.rm(path.join(varDir, 'outbox'), { recursive: true, force: true });
    await copyInbox(home, jobs);
    let approvals = 0;
    if (sandbox) {
      approvals = await setUpCustody(jobs, sandbox, { redis, prefix, logger, home, say });
    } else {
      say(
        `custody: an external provider is set, so the demo neither stores factors nor approves: do it with \`${sealerCommandLine('factors set')}\` and \`${sealerCommandLine('approve')}\` first`,
      );
    }

    const progress = new ProgressLine('sealing');
    const night = await runNight({
      jobs,
      connection: { url: endpoint.url, maxRetriesPerRequest: null },
      redis,
      prefix,
      logger,
      concurrency: o.concurrency,
      defaultProviderUrl: providerUrl,
      onProgress: (done, total) => progress.update(done, total),
      // With an external provider nobody may have approved: report the waiting invoices, don't hang.
      stopWhenOnlyAwaiting: true,
      approvalPollMs: 2_000,
    });
    progress.done();

    // A second production of the same exports must enqueue nothing: show it.
    await copyInbox(home, jobs);
    const queue = openSealQueue({ url: endpoint.url, maxRetriesPerRequest: null }, prefix);
    let again = 0;
    let queued = 0;
    let sealedBefore = 0;
    try {
      for (const job of jobs) {
        const r = await produceRun(job, { queue, redis, prefix, logger });
        again += r.totals.enqueued;
        queued += r.totals.duplicates;
        sealedBefore += r.totals.alreadySealed;
      }
    } finally {
      await queue.close();
    }

    for (const run of night.runs) {
      const { counts } = run;
      const job = jobs.find((j) => j.name === run.job)!;
      const outDir = path.join(job.outboxRoot, run.tenant, run.produced.runDate);
      const { level, appearance } = job.signing;
      say(`\n${run.job} (tenant ${run.tenant}), run ${run.produced.runId}`);
      say(
        `  level PAdES ${level}${appearance ? `, visible seal on page ${appearance.page}` : ', invisible seal'}`,
      );
      say(
        `  rows ${counts.rows}: sealed ${counts.sealed}, already sealed ${counts.alreadySealed}, failed ${counts.failed}, rejected ${counts.rejected}`,
      );
      for (const f of run.produced.files) {
        say(
          `  export ${path.relative(home, f.file)} (${f.encoding})${f.rejectsFile ? `, rejects in ${path.relative(home, f.rejectsFile)}` : ''}`,
        );
        if (f.spoolFile) {
          say(
            `  invoice data, rendered as qualified invoices (適格請求書) in the prepare threads, then sealed; records spooled in ${path.relative(home, f.spoolFile)}`,
          );
        }
      }
      for (const f of run.failures) say(`  FAILED ${f.invoice} (line ${f.line}): ${f.reason}`);
      // Only files that exist: a run still awaiting approval has no report yet, one with nothing sealed no manifest.
      const manifest = path.join(outDir, MANIFEST_NAME);
      const report = runReportDir(job.outboxRoot, run.tenant, run.produced.runDate, run.produced.runId);
      if (counts.sealed > 0) say(`  sealed PDFs: ${path.relative(home, outDir)}/*.pdf`);
      if (await exists(manifest)) say(`  manifest:    ${path.relative(home, manifest)}`);
      if (await exists(path.join(report, 'summary.json')))
        say(`  run report:  ${path.relative(home, report)}/ (manifest.csv, rejects.csv, summary.json)`);
    }
    say('');
    for (const c of night.credentials) {
      const job = jobs.find((j) => j.tenant === c.tenant && j.signing.credentialId === c.credentialId);
      const custody = job?.signing.custody;
      const via =
        custody?.mode === 'approval'
          ? custody.via === 'oauth2code'
            ? "the provider's page"
            : 'a prompt'
          : '';
      say(
        `tenant ${c.tenant}, credential ${c.credentialId}, custody ${c.custody}: ${c.signatures} signatures in ${c.signHashCalls} signHash calls, ` +
          (via
            ? `under the tenant's approval on ${via} (the worker authorised nothing), ${c.unusedSignatures} approved seals unused`
            : `${c.authorisations} authorisation(s), ${c.unusedSignatures} signatures left unused on SADs`) +
          (c.oneDocumentPerAuthorisation ? '; one document per authorisation' : ''),
      );
      if (job)
        say(
          `  audit log: ${path.relative(home, auditDir(job.outboxRoot, c.tenant))}/*.jsonl (check: ${sealerCommandLine(`audit verify --tenant ${c.tenant}`)})`,
        );
    }
    const awaiting = night.runs.reduce((n, r) => n + (r.counts.awaitingApproval ?? 0), 0);
    if (awaiting > 0)
      say(
        `awaiting approval: ${awaiting} invoices (they seal once \`${sealerCommandLine('approve')}\` is run)`,
      );
    say(
      `re-run of the same exports: ${again} enqueued, ${sealedBefore} recognised as already sealed (the outbox's sealed index), ${queued} as already queued`,
    );
    say(
      `logs: ${path.relative(home, logFile)}${sandbox ? `; check a file: ${sealerCommandLine(`verify --root ${path.relative(home, sandbox.rootCertPath)} <pdf>`)}` : ''}`,
    );
    const sum = (k: 'sealed' | 'rejected' | 'failed') => night.runs.reduce((n, r) => n + r.counts[k], 0);
    const calls = night.credentials.reduce((n, c) => n + c.signHashCalls, 0);
    const auths = night.credentials.reduce((n, c) => n + c.authorisations, 0);
    say(
      `\ndemo: ${sum('sealed')} invoices sealed, ${sum('rejected')} rows rejected, ${sum('failed')} failed, ` +
        `in ${night.seconds.toFixed(1)} s; ${calls} signHash calls, ${auths} authorisation(s) by the worker, ${approvals} approval(s) by a tenant`,
    );
    if (sum('failed') > 0) process.exitCode = 1;
    return night;
  } finally {
    await sandbox?.close();
    await redis.quit();
    await endpoint.release();
    logger.flush();
  }
}
