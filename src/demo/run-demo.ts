// `sealer demo`: one night for the two sample tenants, with nothing to configure. Uses a local Redis
// (or a private one), the built-in sandbox provider (unless SEALER_PROVIDER_URL is set), fresh copies
// of fixtures/exports as the inbox, and its own Redis prefix, which it clears first.
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { startSandbox, type SandboxHandle } from '../sandbox';
import { createLogger } from '../common/logger';
import { connectRedis, deleteKeysByPrefix, resolveRedis } from '../common/redis';
import { loadJobs } from '../jobs';
import { openSealQueue, produceRun, runNight, type NightResult } from '../queue';
import { MANIFEST_NAME } from '../outbox';
import { ProgressLine } from './progress-line';

export interface DemoOptions {
  home: string;
  concurrency: number;
  prefix?: string;
}

async function copyInbox(home: string, tenants: string[]): Promise<void> {
  for (const tenant of tenants) {
    const from = path.join(home, 'fixtures', 'exports', tenant);
    const to = path.join(home, 'var', 'inbox', tenant);
    await fs.rm(to, { recursive: true, force: true });
    await fs.cp(from, to, { recursive: true });
  }
}

export async function runDemo(o: DemoOptions): Promise<NightResult> {
  const home = path.resolve(o.home);
  const varDir = path.join(home, 'var');
  await fs.mkdir(varDir, { recursive: true });
  const logFile = path.join(varDir, 'demo.log');
  const logger = createLogger({
    destination: pino.destination({ dest: logFile, sync: true, append: false }),
  });
  const prefix = o.prefix ?? 'sealer-demo';
  const say = (line: string) => process.stdout.write(line + '\n');

  const endpoint = await resolveRedis({ allowPrivate: true });
  say(
    `redis: ${endpoint.origin === 'private' ? `started a private redis-server at ${endpoint.url}` : endpoint.url}`,
  );
  const redis = connectRedis(endpoint.url);
  let sandbox: SandboxHandle | undefined;
  try {
    const cleared = await deleteKeysByPrefix(redis, prefix);
    say(
      `demo state: prefix "${prefix}" (${cleared} keys from an earlier demo cleared), fresh var/inbox and var/outbox`,
    );
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
    const jobs = await loadJobs(path.join(home, 'jobs'));
    const tenants = [...new Set(jobs.map((j) => j.tenant))];
    await fs.rm(path.join(varDir, 'outbox'), { recursive: true, force: true });
    await copyInbox(home, tenants);

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
    });
    progress.done();

    // A second production of the same exports must enqueue nothing: show it.
    await copyInbox(home, tenants);
    const queue = openSealQueue({ url: endpoint.url, maxRetriesPerRequest: null }, prefix);
    let again = 0;
    let duplicates = 0;
    try {
      for (const job of jobs) {
        const r = await produceRun(job, { queue, redis, prefix, logger });
        again += r.totals.enqueued;
        duplicates += r.totals.duplicates;
      }
    } finally {
      await queue.close();
    }

    for (const run of night.runs) {
      const { counts } = run;
      const outDir = path.join(
        jobs.find((j) => j.name === run.job)!.outboxRoot,
        run.tenant,
        run.produced.runDate,
      );
      say(`\n${run.job} (tenant ${run.tenant}), run ${run.produced.runId}`);
      say(
        `  rows ${counts.rows}: sealed ${counts.sealed}, already sealed ${counts.alreadySealed}, failed ${counts.failed}, rejected ${counts.rejected}`,
      );
      for (const f of run.produced.files) {
        say(
          `  export ${path.relative(home, f.file)} (${f.encoding})${f.rejectsFile ? `, rejects in ${path.relative(home, f.rejectsFile)}` : ''}`,
        );
      }
      for (const f of run.failures) say(`  FAILED ${f.invoice} (line ${f.line}): ${f.reason}`);
      say(`  sealed PDFs: ${path.relative(home, outDir)}/*.pdf`);
      say(`  manifest:    ${path.relative(home, path.join(outDir, MANIFEST_NAME))}`);
    }
    say('');
    for (const c of night.credentials) {
      say(
        `credential ${c.credentialId} (tenant ${c.tenant}): ${c.signatures} signatures in ${c.signHashCalls} signHash calls, ` +
          `${c.authorisations} authorisation(s), ${c.unusedSignatures} unused on the last SAD`,
      );
    }
    say(
      `re-run of the same exports: ${again} enqueued, ${duplicates} recognised as already queued or sealed`,
    );
    say(
      `logs: ${path.relative(home, logFile)}${sandbox ? `; check a file: npx sealer verify --root ${path.relative(home, sandbox.rootCertPath)} <pdf>` : ''}`,
    );
    const sum = (k: 'sealed' | 'rejected' | 'failed') => night.runs.reduce((n, r) => n + r.counts[k], 0);
    const calls = night.credentials.reduce((n, c) => n + c.signHashCalls, 0);
    const auths = night.credentials.reduce((n, c) => n + c.authorisations, 0);
    say(
      `\ndemo: ${sum('sealed')} invoices sealed, ${sum('rejected')} rows rejected, ${sum('failed')} failed, ` +
        `in ${night.seconds.toFixed(1)} s; ${calls} signHash calls, ${auths} authorisations`,
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
