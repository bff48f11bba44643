// `sealer failed [--run R] [--tenant T] [--json]`: every failed invoice the runs list, with its tenant,
// run, kind, reason, attempts, export file and line: what `sealer retry` would re-queue.
import { listFailed, UnknownRunError, type FailedInvoice } from '../../queue';
import { openContext, processIo, type CliIo, type CommonOptions } from '../context';

export function failureLine(f: FailedInvoice): string {
  return (
    `${f.tenant ?? '?'} ${f.invoice} (run ${f.runId}, job ${f.jobId ?? '?'}): ${f.kind ?? 'failed'} after ` +
    `${f.attempts ?? '?'} attempt(s): ${f.reason} [${f.exportFile ?? '?'} line ${f.line}]`
  );
}

export async function failedCommand(
  opts: CommonOptions & { run?: string; tenant?: string; json?: boolean },
  io: CliIo = processIo,
): Promise<void> {
  const ctx = await openContext(opts);
  try {
    let failed: FailedInvoice[];
    try {
      failed = await listFailed(ctx.redis, ctx.prefix, { runId: opts.run, tenant: opts.tenant });
    } catch (err) {
      if (!(err instanceof UnknownRunError)) throw err;
      io.stderr.write(`sealer: ${err.message} (see sealer runs)\n`);
      process.exitCode = 1;
      return;
    }
    if (opts.json) {
      io.stdout.write(JSON.stringify({ failed }, null, 2) + '\n');
      return;
    }
    for (const f of failed) io.stdout.write(failureLine(f) + '\n');
    const runs = new Set(failed.map((f) => f.runId)).size;
    io.stdout.write(`failed: ${failed.length} invoice(s) in ${runs} run(s)\n`);
  } finally {
    await ctx.release();
  }
}
