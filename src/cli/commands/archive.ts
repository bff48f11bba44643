// `sealer archive search --tenant T [--from D] [--to D] [--min N] [--max N] [--customer S] [--json]`: find
// a tenant's sealed invoices by issue date, amount and customer (電子帳簿保存法's 取引年月日, 取引金額,
// 取引先), alone or combined. `sealer archive reindex [--tenant T]`: rebuild the index from the outbox's
// manifests. The same search is the dashboard's /archive page, behind its login.
import {
  archiveSpecs,
  ArchiveQueryError,
  reindexTenant,
  TenantArchives,
  type ArchiveQuery,
} from '../../archive';
import { loadJobSet } from '../../jobs';
import path from 'node:path';
import { processIo, type CliIo } from '../context';

export interface ArchiveSearchOptions {
  jobs: string;
  tenant: string;
  from?: string;
  to?: string;
  min?: number;
  max?: number;
  customer?: string;
  limit: number;
  offset: number;
  json?: boolean;
}

async function openArchives(jobsDir: string) {
  const { jobs } = await loadJobSet(path.resolve(jobsDir));
  return { jobs, archives: new TenantArchives(archiveSpecs(jobs)) };
}

const yen = (n: number) => `${n < 0 ? '-' : ''}¥${Math.abs(n).toLocaleString('en-US')}`;

export async function archiveSearchCommand(opts: ArchiveSearchOptions, io: CliIo = processIo): Promise<void> {
  const { archives } = await openArchives(opts.jobs);
  try {
    const query: ArchiveQuery = {
      tenant: opts.tenant,
      ...(opts.from !== undefined && { issueDateFrom: opts.from }),
      ...(opts.to !== undefined && { issueDateTo: opts.to }),
      ...(opts.min !== undefined && { amountMin: opts.min }),
      ...(opts.max !== undefined && { amountMax: opts.max }),
      ...(opts.customer !== undefined && { customer: opts.customer }),
      limit: opts.limit,
      offset: opts.offset,
    };
    const started = performance.now();
    let result;
    try {
      result = await archives.search(query);
    } catch (err) {
      if (!(err instanceof ArchiveQueryError)) throw err;
      io.stderr.write(`sealer archive: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const ms = performance.now() - started;
    if (opts.json) {
      io.stdout.write(JSON.stringify({ ...result, ms: Math.round(ms * 10) / 10 }, null, 2) + '\n');
      return;
    }
    for (const r of result.rows) {
      io.stdout.write(
        `${r.issueDate ?? '(no date)'}  ${r.invoiceNumber}  ${yen(r.amount)}  ${r.customer}  ${r.level}  ${r.file}` +
          `${r.registrationNumber ? `  ${r.registrationNumber}` : ''}\n`,
      );
    }
    const total = `${result.total}${result.totalCapped ? '+' : ''}`;
    io.stdout.write(
      `archive: ${result.rows.length} shown of ${total} matching for tenant ${opts.tenant} in ${ms.toFixed(1)} ms\n`,
    );
    if (result.total === 0) process.exitCode = 1;
  } finally {
    await archives.close();
  }
}

export async function archiveReindexCommand(
  opts: { jobs: string; tenant?: string },
  io: CliIo = processIo,
): Promise<void> {
  const { jobs, archives } = await openArchives(opts.jobs);
  try {
    const tenants = new Map<string, string>();
    for (const j of jobs) if (!tenants.has(j.tenant)) tenants.set(j.tenant, j.outboxRoot);
    if (opts.tenant !== undefined && !tenants.has(opts.tenant)) {
      io.stderr.write(`sealer archive: no job definition names tenant ${opts.tenant}\n`);
      process.exitCode = 1;
      return;
    }
    let rows = 0;
    for (const [tenant, outboxRoot] of tenants) {
      if (opts.tenant !== undefined && tenant !== opts.tenant) continue;
      const r = await reindexTenant(archives, outboxRoot, tenant, (folder, n) =>
        io.stderr.write(`${tenant}/${folder}: ${n} invoice(s)\n`),
      );
      rows += r.rows;
      io.stdout.write(
        `tenant ${tenant}: ${r.rows} invoice(s) from ${r.folders} folder(s) indexed` +
          (r.withoutFacts
            ? `, ${r.withoutFacts} without customer or amount (manifests from before those columns)`
            : '') +
          '\n',
      );
    }
    io.stdout.write(`archive reindex: ${rows} invoice(s) indexed\n`);
  } finally {
    await archives.close();
  }
}
