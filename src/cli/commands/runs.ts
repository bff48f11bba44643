// `sealer runs`: how the recent runs stand (counts, invoices awaiting approval) and the approvals parked.
import { ParkedApprovals } from '../../csc';
import { listRuns } from '../../queue';
import { openContext, type CommonOptions } from '../context';

export async function runsCommand(opts: CommonOptions & { limit: number }): Promise<void> {
  const ctx = await openContext(opts);
  try {
    const runs = await listRuns(ctx.redis, ctx.prefix, opts.limit);
    for (const r of runs) {
      const c = r.counts;
      const state = c.settledAt
        ? 'settled'
        : c.state === 'produced'
          ? 'sealing'
          : String(c.state ?? 'producing');
      console.log(
        `${r.runId} (${state}): ${c.enqueued} enqueued, ${c.sealed} sealed, ${c.alreadySealed} already sealed, ${c.failed} failed, ${c.rejected} rejected` +
          (c.awaitingApproval ? `; awaiting approval: ${c.awaitingApproval} invoices` : ''),
      );
    }
    const approvals = await new ParkedApprovals(ctx.redis, ctx.prefix).list();
    for (const a of approvals) {
      const expired = a.expiresAt <= Date.now();
      console.log(
        `approval ${a.tenant}/${a.credentialId} via ${a.via}${a.approvedBy ? ` by ${a.approvedBy}` : ''}: ${a.remaining} of ${a.granted} left, ${expired ? 'expired' : 'until'} ${new Date(a.expiresAt).toISOString()}`,
      );
    }
    const awaiting = runs.reduce((n, r) => n + (r.counts.awaitingApproval ?? 0), 0);
    console.log(
      `runs: ${runs.length} shown, ${approvals.length} approval(s) parked` +
        (awaiting ? `, awaiting approval: ${awaiting} invoices` : ''),
    );
  } finally {
    await ctx.release();
  }
}
