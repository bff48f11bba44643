// `sealer runs [--tenant T] [--limit N] [--json]`: how the recent runs stand (counts, invoices awaiting
// approval, start, end, level) and the approvals parked.
import { ParkedApprovals } from '../../custody';
import { listRunSummaries, pausedTenants, type RunSummary } from '../../queue';
import { openContext, processIo, type CliIo, type CommonOptions } from '../context';

export interface RunsOptions extends CommonOptions {
  limit: number;
  tenant?: string;
  json?: boolean;
}

/** The run's one-line count summary (scripts and tests match it). */
export function runLine(r: RunSummary): string {
  const c = r.counts;
  return (
    `${r.runId} (${r.state}): ${c.queued} enqueued, ${c.sealed} sealed, ${c.alreadySealed} already sealed, ${c.failed} failed, ${c.rejected} rejected` +
    (c.awaitingApproval ? `; awaiting approval: ${c.awaitingApproval} invoices` : '')
  );
}

/** Tenant, level and times, indented under the run's line. */
export function runTimesLine(r: RunSummary): string {
  const parts = [`tenant ${r.tenant ?? '?'}`, `level ${r.level ?? 'unrecorded'}`];
  if (r.startedAt) parts.push(`started ${r.startedAt}`);
  if (r.endedAt) parts.push(`ended ${r.endedAt}`);
  if (r.durationSec !== undefined) parts.push(`took ${r.durationSec.toFixed(1)} s`);
  return `  ${parts.join(', ')}`;
}

/** The provider calls the run took part in, indented under the run's line. */
export function runCallsLine(r: RunSummary): string {
  return `  provider: ${r.calls.signHash} signHash call(s) for ${r.calls.signatures} signature(s), ${r.calls.authorize} authorisation(s)`;
}

export async function runsCommand(opts: RunsOptions, io: CliIo = processIo): Promise<void> {
  const ctx = await openContext(opts);
  try {
    const runs = await listRunSummaries(ctx.redis, ctx.prefix, { tenant: opts.tenant, limit: opts.limit });
    const approvals = (await new ParkedApprovals(ctx.redis, ctx.prefix).list()).filter(
      (a) => opts.tenant === undefined || a.tenant === opts.tenant,
    );
    const paused = (
      await pausedTenants({
        redis: ctx.redis,
        connection: ctx.connection,
        prefix: ctx.prefix,
        tenants: ctx.jobs.map((j) => j.tenant),
      })
    ).filter((t) => opts.tenant === undefined || t === opts.tenant);
    if (opts.json) {
      io.stdout.write(JSON.stringify({ runs, approvals, paused }, null, 2) + '\n');
      return;
    }
    for (const r of runs) {
      io.stdout.write(runLine(r) + '\n');
      io.stdout.write(runTimesLine(r) + '\n');
      io.stdout.write(runCallsLine(r) + '\n');
    }
    for (const a of approvals) {
      const expired = a.expiresAt <= Date.now();
      io.stdout.write(
        `approval ${a.tenant}/${a.credentialId} via ${a.via}${a.approvedBy ? ` by ${a.approvedBy}` : ''}: ${a.remaining} of ${a.granted} left, ${expired ? 'expired' : 'until'} ${new Date(a.expiresAt).toISOString()}\n`,
      );
    }
    const awaiting = runs.reduce((n, r) => n + r.counts.awaitingApproval, 0);
    io.stdout.write(
      `runs: ${runs.length} shown, ${approvals.length} approval(s) parked` +
        (awaiting ? `, awaiting approval: ${awaiting} invoices` : '') +
        (paused.length ? `; paused: ${paused.join(', ')}` : '') +
        '\n',
    );
  } finally {
    await ctx.release();
  }
}
