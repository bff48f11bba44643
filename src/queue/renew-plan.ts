// What `sealer renew` would do: for every tenant folder under an outbox (or one tenant), the latest
// manifest row per invoice, the file it names, and a decision from the seal part (renew and why, up to
// date, not renewable, fails verification). Reading only: nothing here writes a byte, so the dry run
// is this plan printed. A file whose digest is not its manifest row's but which starts with that
// row's file is a renewal interrupted after the rename: it is planned as "finish the bookkeeping".
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { latestManifestRows, type ManifestRow } from '../outbox';
import { assessRenewal, type RenewalDecision } from '../seal';
import type { JobDefinition } from '../jobs';
import { trustRootsOf } from './signing-contexts';

export interface RenewalItem {
  tenant: string;
  /** the job definition whose TSA and trust roots serve this tenant (undefined: none found) */
  jobName?: string;
  /** the run-date folder holding the file and its manifest */
  dir: string;
  invoiceNumber: string;
  /** absolute path of the sealed file */
  file: string;
  /** the latest manifest row for the invoice */
  row: ManifestRow;
  /** SHA-256 hex of the file as read now */
  fileSha256?: string;
  /** 'finish' = the file was renewed but the manifest row (or audit entry) was not written yet */
  action: RenewalDecision['action'] | 'finish' | 'missing';
  reason: string;
  tsaCertificateExpiry?: Date;
}

export interface PlanOptions {
  outboxRoot: string;
  jobs: JobDefinition[];
  /** only this tenant's folder; default every tenant folder under the outbox */
  tenant?: string;
  withinMs: number;
  now?: Date;
}

const RUN_DATE = /^\d{4}-\d{2}-\d{2}$/;

export function sha256Hex(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** The job serving a tenant's renewals: the first by name that writes to this outbox and timestamps. */
export function renewalJobFor(
  jobs: JobDefinition[],
  outboxRoot: string,
  tenant: string,
): JobDefinition | undefined {
  const root = path.resolve(outboxRoot);
  const mine = jobs
    .filter((j) => j.tenant === tenant && path.resolve(j.outboxRoot) === root)
    .sort((a, b) => a.name.localeCompare(b.name));
  return mine.find((j) => j.signing.level !== 'B-B' && j.trustRootPaths?.length) ?? mine[0];
}

/**
 * Where, in `bytes`, an earlier revision that hashes to `sha256` ends (after one of its %%EOF
 * markers and the line end that follows), or undefined. Finds the delivered file inside a renewed one.
 */
export function prefixEndingWith(bytes: Buffer, sha256: string): number | undefined {
  let at = bytes.indexOf('%%EOF', 0, 'latin1');
  while (at >= 0) {
    const end = at + 5;
    for (const cut of [end, end + 1, end + 2]) {
      if (cut > bytes.length) continue;
      if (sha256Hex(bytes.subarray(0, cut)) === sha256) return cut;
    }
    at = bytes.indexOf('%%EOF', end, 'latin1');
  }
  return undefined;
}

export async function tenantsUnder(outboxRoot: string, tenant?: string): Promise<string[]> {
  if (tenant) return [tenant];
  const names = await fs.readdir(outboxRoot, { withFileTypes: true }).catch((err: unknown) => {
    throw new Error(`cannot list outbox ${outboxRoot}: ${(err as Error).message}`);
  });
  return names
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

/** One decision per (folder, invoice), latest manifest row first; reads every file once. */
export async function planRenewals(options: PlanOptions): Promise<RenewalItem[]> {
  const now = options.now ?? new Date();
  const items: RenewalItem[] = [];
  for (const tenant of await tenantsUnder(options.outboxRoot, options.tenant)) {
    const tenantDir = path.join(options.outboxRoot, tenant);
    const folders = (await fs.readdir(tenantDir).catch(() => [] as string[]))
      .filter((n) => RUN_DATE.test(n))
      .sort();
    const job = renewalJobFor(options.jobs, options.outboxRoot, tenant);
    const roots = job?.trustRootPaths?.length ? await trustRootsOf(job) : undefined;
    for (const folder of folders) {
      const dir = path.join(tenantDir, folder);
      for (const row of (await latestManifestRows(dir)).values()) {
        const file = path.join(dir, row.file);
        const base = { tenant, jobName: job?.name, dir, invoiceNumber: row.invoiceNumber, file, row };
        items.push({ ...base, ...(await decide(file, row, roots, job, options.withinMs, now)) });
      }
    }
  }
  return items;
}

async function decide(
  file: string,
  row: ManifestRow,
  roots: Buffer[] | undefined,
  job: JobDefinition | undefined,
  withinMs: number,
  now: Date,
): Promise<Pick<RenewalItem, 'action' | 'reason' | 'tsaCertificateExpiry' | 'fileSha256'>> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    return { action: 'missing', reason: `cannot read ${row.file}: ${(err as Error).message}` };
  }
  const fileSha256 = sha256Hex(bytes);
  if (!job) return { action: 'invalid', reason: 'no job definition for this tenant and outbox', fileSha256 };
  if (!roots) return { action: 'invalid', reason: `job ${job.name} names no signing.trustRoots`, fileSha256 };
  if (fileSha256 !== row.sealedSha256) {
    if (prefixEndingWith(bytes, row.sealedSha256) !== undefined) {
      return {
        action: 'finish',
        reason: 'renewed, but its manifest row was not written: finishing the bookkeeping',
        fileSha256,
      };
    }
    return {
      action: 'invalid',
      reason: 'file does not match its manifest row (changed outside the sealer)',
      fileSha256,
    };
  }
  const decision = await assessRenewal(bytes, { trustedRootsDer: roots, withinMs, now });
  return {
    action: decision.action,
    reason: decision.reason,
    tsaCertificateExpiry: decision.tsaCertificateExpiry,
    fileSha256,
  };
}
