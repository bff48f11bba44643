// `sealer run <id> [--json]`: one run's counts, times and level, its failed invoices and the export
// files that failed whole or were left for the next run. Exit 1 when no such run is recorded.
import { readRunDetail } from '../../queue';
import { openContext, processIo, type CliIo, type CommonOptions } from '../context';
import { failureLine } from './failed';
import { runCallsLine, runLine, runTimesLine } from './runs';

export async function runCommand(
  runId: string,
  opts: CommonOptions & { json?: boolean },
  io: CliIo = processIo,
): Promise<void> {
  const ctx = await openContext(opts);
  try {
    const detail = await readRunDetail(ctx.redis, ctx.prefix, runId);
    if (!detail) {
      io.stderr.write(`sealer: no run ${runId} is recorded (see sealer runs)\n`);
      process.exitCode = 1;
      return;
    }
    if (opts.json) {
      io.stdout.write(JSON.stringify(detail, null, 2) + '\n');
      return;
    }
    io.stdout.write(runLine(detail) + '\n');
    io.stdout.write(runTimesLine(detail) + '\n');
    io.stdout.write(runCallsLine(detail) + '\n');
    for (const f of detail.failures) io.stdout.write(`  ${failureLine(f)}\n`);
    for (const e of detail.fileErrors) io.stdout.write(`  export ${e.file} failed: ${e.error}\n`);
    for (const n of detail.notReady)
      io.stdout.write(`  export ${n.file} left for the next run: ${n.reason}\n`);
    const c = detail.counts;
    io.stdout.write(
      `run ${runId}: ${detail.state}, ${c.queued} queued, ${c.sealed} sealed, ${c.alreadySealed} already sealed, ` +
        `${c.failed} failed, ${c.rejected} rejected, ${c.awaitingApproval} awaiting approval, ${c.pending} pending\n`,
    );
  } finally {
    await ctx.release();
  }
}
