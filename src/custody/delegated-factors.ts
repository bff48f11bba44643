// What `sealer factors set | rotate-key | list` do for the provider-held custody model, found from the
// job definitions: store a tenant's delegated PIN and TOTP secret in its vault, re-key vaults, list
// what is stored. Storing and re-keying go into the tenant's audit trail by key fingerprint (never by
// key or factor) and clear the credential's latch, so workers may authorise with the new factors.
// The caller reads the factors (a hidden prompt or stdin) and prints the lines it is told.
import fs from 'node:fs/promises';
import path from 'node:path';
import { connectRedis, resolveRedis } from '../common/redis';
import { loadJobs, type JobDefinition } from '../jobs';
import { AuditLog, type AuditEntryInput } from '../outbox';
import { clearCredentialLatch } from './credential-latches';
import { kekIdOf, listFactorFiles, loadKek, openFactorVault, rotateKey } from './factor-vault';

/** Where the lines for the person at the command go: `info` to stdout, `warn` to stderr. */
export interface CustodyReport {
  info(line: string): void;
  warn(line: string): void;
}

type ProviderHeldJob = JobDefinition & {
  factorVaultDir: string;
  signing: { custody: { mode: 'provider-held'; kek: string } };
};

function isProviderHeld(job: JobDefinition): job is ProviderHeldJob {
  return job.signing.custody.mode === 'provider-held' && job.factorVaultDir !== undefined;
}

/** The tenant's provider-held jobs; an error names the tenant when it has none. */
async function tenantJobs(jobsDir: string, tenant: string): Promise<ProviderHeldJob[]> {
  const dir = path.resolve(jobsDir);
  const all = (await loadJobs(dir)).filter((j) => j.tenant === tenant);
  const held = all.filter(isProviderHeld);
  if (held.length === 0) {
    const others = all.map((j) => `${j.name} (custody ${j.signing.custody.mode})`).join(', ');
    throw new Error(
      `tenant ${tenant} has no job with signing.custody provider-held in ${dir}` +
        (others ? `; its jobs: ${others}` : '; it has no job there at all'),
    );
  }
  return held;
}

/**
 * Appends `entry` to the tenant's audit trail in each of `outboxRoots` and says where it went. `done`
 * names what already happened, for the error when the entry cannot be written.
 */
async function appendAudit(
  tenant: string,
  outboxRoots: string[],
  entry: AuditEntryInput,
  done: string,
  report: CustodyReport,
): Promise<void> {
  for (const root of [...new Set(outboxRoots)].sort()) {
    const log = AuditLog.forTenant(root, tenant);
    try {
      const record = await log.append(entry);
      report.info(`audit entry ${entry.type} appended to ${log.dir} (seq ${record.seq})`);
    } catch (err) {
      throw new Error(
        `${done}, but the ${entry.type} entry could not be appended to tenant ${tenant}'s audit trail in ${log.dir}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

/** The job definitions in `dir`, or none when the folder does not exist. */
async function jobsIfAny(dir: string): Promise<JobDefinition[]> {
  try {
    await fs.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return loadJobs(dir);
}

/**
 * New factors may put right what the provider refused: every worker process may authorise these
 * credentials again (see credential-latches.ts). Without a Redis there is no worker to tell; say so
 * and go on.
 */
async function clearLatches(
  tenant: string,
  credentialIds: string[],
  prefix: string,
  report: CustodyReport,
): Promise<void> {
  let endpoint;
  try {
    endpoint = await resolveRedis();
  } catch (err) {
    report.warn(`workers not told (${(err as Error).message}): a credential they stopped stays stopped`);
    return;
  }
  const redis = connectRedis(endpoint.url);
  try {
    for (const credentialId of credentialIds) {
      for (const latch of await clearCredentialLatch(redis, prefix, { tenant, credentialId })) {
        report.info(
          `credential ${credentialId} of tenant ${tenant} at ${latch.providerUrl} may be authorised again (stopped after ${latch.reason})`,
        );
      }
    }
  } finally {
    await redis.quit();
    await endpoint.release();
  }
}

export interface StoreFactorsOptions {
  tenant: string;
  /** needed only when the tenant has several provider-held credentials */
  credential?: string;
  /** the folder of job definitions */
  jobs: string;
  /** the workers' Redis key prefix, whose latches are cleared */
  prefix: string;
  /** PIN, then TOTP secret (either may be empty); called once the vault's key is known to load */
  readFactors: () => Promise<[string, string]>;
  report: CustodyReport;
}

/** `factors set`: stores the tenant's delegated factors for one credential, records it, clears latches. */
export async function storeFactors(opts: StoreFactorsOptions): Promise<void> {
  const held = await tenantJobs(opts.jobs, opts.tenant);
  const credentials = [...new Set(held.map((j) => j.signing.credentialId))].sort();
  const credentialId = opts.credential ?? (credentials.length === 1 ? credentials[0] : undefined);
  if (credentialId === undefined) {
    throw new Error(
      `tenant ${opts.tenant} has several provider-held credentials (${credentials.join(', ')}); choose one with --credential`,
    );
  }
  const jobs = held.filter((j) => j.signing.credentialId === credentialId);
  const job = jobs[0];
  if (!job) {
    throw new Error(
      `tenant ${opts.tenant} has no provider-held job for credential ${credentialId}; its credentials: ${credentials.join(', ')}`,
    );
  }
  // The stored TOTP settings are the ones every job of this credential must compute codes with.
  const differing = jobs.find((j) => JSON.stringify(j.signing.totp) !== JSON.stringify(job.signing.totp));
  if (differing) {
    throw new Error(
      `jobs ${job.name} and ${differing.name} give credential ${credentialId} different signing.totp`,
    );
  }
  // Load the key before asking for anything, so a missing KEK is found before the user types a PIN.
  const vault = await openFactorVault(job);

  const [pin, totpSecret] = await opts.readFactors();
  const stored = await vault.store(opts.tenant, credentialId, {
    ...(pin ? { pin } : {}),
    ...(totpSecret ? { totpSecret } : {}),
    totp: job.signing.totp,
  });
  opts.report.info(
    `factors of tenant ${opts.tenant}, credential ${credentialId} stored in ${stored.file} under key ${stored.kekId}`,
  );
  await appendAudit(
    opts.tenant,
    jobs.map((j) => j.outboxRoot),
    { type: 'factors-stored', credentialId, kekFingerprint: stored.kekId },
    `the factors were stored in ${stored.file}`,
    opts.report,
  );
  await clearLatches(opts.tenant, [credentialId], opts.prefix, opts.report);
}

export interface RotateFactorKeyOptions {
  /** the tenant whose factors are re-keyed; with its jobs, the configured key is the old one */
  tenant?: string;
  /** the folder of job definitions (naming the vaults, and the outboxes holding the audit trails) */
  jobs: string;
  /** with `oldKek`: the vault to re-key, instead of the tenant's jobs' vaults */
  vault?: string;
  oldKek?: string;
  newKek: string;
  /** the workers' Redis key prefix, whose latches are cleared */
  prefix: string;
  /** what `file:` key references are relative to; default the working directory */
  cwd?: string;
  report: CustodyReport;
}

/** `factors rotate-key`: re-encrypts vaults under a new KEK, records it per tenant, clears latches. */
export async function rotateFactorKey(opts: RotateFactorKeyOptions): Promise<void> {
  const cwd = opts.cwd ?? process.cwd();
  const newKek = await loadKek(opts.newKek, cwd);
  // Either from the tenant's jobs (the configured key is the old one) or all spelled out.
  // `jobs`: the job definitions naming the vault, whose outboxes hold the audit trails of its tenants.
  const targets: {
    vaultDir: string;
    oldKek: Buffer;
    oldRef: string;
    jobFiles: string[];
    jobs: ProviderHeldJob[];
  }[] = [];
  const jobsDir = path.resolve(opts.jobs);
  if (opts.vault !== undefined || opts.oldKek !== undefined) {
    if (opts.vault === undefined || opts.oldKek === undefined) {
      throw new Error('--vault and --old-kek go together (or use --tenant with the job definitions)');
    }
    const vaultDir = path.resolve(opts.vault);
    // Read before anything is re-encrypted, so a broken job definition changes nothing.
    const naming = (await jobsIfAny(jobsDir))
      .filter(isProviderHeld)
      .filter((j) => j.factorVaultDir === vaultDir);
    targets.push({
      vaultDir,
      oldKek: await loadKek(opts.oldKek, cwd),
      oldRef: opts.oldKek,
      jobFiles: [],
      jobs: naming,
    });
  } else {
    if (opts.tenant === undefined) throw new Error('give --tenant, or --vault with --old-kek');
    const byVault = new Map<string, ProviderHeldJob[]>();
    for (const job of await tenantJobs(opts.jobs, opts.tenant)) {
      byVault.set(job.factorVaultDir, [...(byVault.get(job.factorVaultDir) ?? []), job]);
    }
    for (const [vaultDir, jobs] of byVault) {
      const first = jobs[0]!;
      const other = jobs.find((j) => j.signing.custody.kek !== first.signing.custody.kek);
      if (other) {
        throw new Error(
          `jobs ${first.name} and ${other.name} keep tenant ${opts.tenant}'s factors in ${vaultDir} under different keys; rotate with --vault and --old-kek`,
        );
      }
      targets.push({
        vaultDir,
        oldKek: await loadKek(first.signing.custody.kek, first.baseDir),
        oldRef: first.signing.custody.kek,
        jobFiles: jobs.map((j) => j.file),
        jobs,
      });
    }
  }
  const { report } = opts;
  const newId = kekIdOf(newKek);
  const scope = opts.tenant ? { tenant: opts.tenant } : {};
  const fileKey = (f: { tenant: string; credentialId: string }) => `${f.tenant}\u0000${f.credentialId}`;
  for (const t of targets) {
    const oldId = kekIdOf(t.oldKek);
    // Which files this run re-encrypts: under the old key before, under the new one after. Worked out
    // from the files themselves, so a rotation that stops halfway still records what it did.
    const underOld = new Set(
      (await listFactorFiles(t.vaultDir, scope.tenant))
        .filter((f) => !f.problem && f.kekId === oldId)
        .map(fileKey),
    );
    let failure: unknown;
    try {
      const r = await rotateKey(t.vaultDir, t.oldKek, newKek, scope);
      const whose = opts.tenant ? `of tenant ${opts.tenant} ` : '';
      report.info(
        `re-encrypted ${r.files} factor file(s) ${whose}in ${t.vaultDir} from key ${oldId} to key ${newId}` +
          (r.skipped ? ` (${r.skipped} already under it)` : ''),
      );
      // Until the configuration names the new key, the worker cannot decrypt these files (it says which
      // key it was given and which one it needs).
      const where = t.jobFiles.length ? ` in ${t.jobFiles.join(', ')}` : '';
      report.info(
        `now switch the configured key: set signing.custody.kek${where} to ${opts.newKek}, or put the new key where ${t.oldRef} points`,
      );
    } catch (err) {
      failure = err;
    }
    const moved = new Map<string, string[]>();
    if (underOld.size > 0) {
      for (const f of await listFactorFiles(t.vaultDir, scope.tenant)) {
        if (f.problem || f.kekId !== newId || !underOld.has(fileKey(f))) continue;
        moved.set(f.tenant, [...(moved.get(f.tenant) ?? []), f.credentialId]);
      }
    }
    // One tenant's trail failing does not keep the others from theirs; the rotation's own error comes first.
    const auditFailures: Error[] = [];
    for (const [tenant, credentialIds] of moved) {
      await clearLatches(tenant, [...new Set(credentialIds)], opts.prefix, report);
      const roots = t.jobs.filter((j) => j.tenant === tenant).map((j) => j.outboxRoot);
      if (roots.length === 0) {
        report.info(
          `no audit entry: no job definition names this vault for tenant ${tenant} (job definitions: ${jobsDir})`,
        );
        continue;
      }
      try {
        await appendAudit(
          tenant,
          roots,
          {
            type: 'key-rotated',
            fromKekFingerprint: oldId,
            toKekFingerprint: newId,
            credentialIds: [...new Set(credentialIds)].sort(),
          },
          `tenant ${tenant}'s factors in ${t.vaultDir} were re-encrypted to key ${newId}`,
          report,
        );
      } catch (err) {
        auditFailures.push(err as Error);
      }
    }
    if (failure !== undefined) {
      for (const err of auditFailures) report.warn(err.message);
      throw failure;
    }
    if (auditFailures.length > 0) {
      for (const err of auditFailures.slice(1)) report.warn(err.message);
      throw auditFailures[0];
    }
  }
}

/** `factors list`: each vault (the one given, else those the job definitions name) and its files. */
export async function listFactorVaults(opts: {
  jobs: string;
  vault?: string;
  report: CustodyReport;
}): Promise<void> {
  const { report } = opts;
  const vaults = new Map<string, { configured?: string }>();
  if (opts.vault !== undefined) {
    vaults.set(path.resolve(opts.vault), {});
  } else {
    for (const job of (await loadJobs(path.resolve(opts.jobs))).filter(isProviderHeld)) {
      if (vaults.has(job.factorVaultDir)) continue;
      // The configured key's fingerprint helps spot files left under another key; without the key, skip it.
      const configured = await loadKek(job.signing.custody.kek, job.baseDir).then(kekIdOf, () => undefined);
      vaults.set(job.factorVaultDir, configured ? { configured } : {});
    }
    if (vaults.size === 0) report.info('no job uses custody provider-held');
  }
  for (const [dir, { configured }] of vaults) {
    report.info(`vault ${dir}${configured ? ` (configured key ${configured})` : ''}`);
    const files = await listFactorFiles(dir);
    if (files.length === 0) report.info('  no factors stored');
    for (const f of files) {
      const mark = configured && f.kekId !== configured && !f.problem ? ' NOT under the configured key' : '';
      report.info(
        `  tenant ${f.tenant}  credential ${f.credentialId}  key ${f.kekId}  stored ${f.storedAt}${mark}` +
          (f.problem ? `  PROBLEM: ${f.problem}` : ''),
      );
    }
  }
}
