// `sealer retry <jobId...> | --run R | --all-failed [--tenant T] [--json]`: re-queue failed invoices
// (attempts reset) for the workers; one sealed since is reported as already sealed and not queued.
// Exit 0 when everything asked for was re-queued or found sealed, 1 when nothing was to retry or an
// ID was unknown or not failed (each named).
import type { Command } from 'commander';
import { openSealQueue, retryJobs, UnknownRunError, type RetryResult, type RetryTarget } from '../../queue';
import { openContext, processIo, type CliIo, type CommonOptions } from '../context';
import { USAGE_EXIT } from '../usage';

export interface RetryCliOptions extends CommonOptions {
  run?: string;
  allFailed?: boolean;
  tenant?: string;
  json?: boolean;
}

/** The target the command line names, or a usage error (exit 2) for none or several. */
export function retryTarget(jobIds: string[], opts: RetryCliOptions, cmd: Command): RetryTarget {
  const given = [jobIds.length > 0, opts.run !== undefined, opts.allFailed === true].filter(Boolean).length;
  if (given !== 1) {
    cmd.error(`error: give job IDs, --run or --all-failed (${given === 0 ? 'none was given' : 'only one'})`, {
      exitCode: USAGE_EXIT,
    });
  }
  if (jobIds.length > 0) {
    if (opts.tenant !== undefined)
      cmd.error('error: --tenant goes with --run or --all-failed', { exitCode: USAGE_EXIT });
    return { jobIds };
  }
  if (opts.run !== undefined) return { runId: opts.run, tenant: opts.tenant };
  return { allFailed: true, tenant: opts.tenant };
}

export function retryOk(r: RetryResult): boolean {
  return r.requeued.length + r.alreadySealed.length > 0 && r.unknown.length === 0 && r.notFailed.length === 0;
}

export async function retryCommand(
  target: RetryTarget,
  opts: RetryCliOptions,
  io: CliIo = processIo,
): Promise<void> {
  const ctx = await openContext(opts);
  const queue = openSealQueue(ctx.connection, ctx.prefix);
  try {
    let result: RetryResult;
    try {
      result = await retryJobs({ redis: ctx.redis, prefix: ctx.prefix, queue, jobs: ctx.jobs }, target);
    } catch (err) {
      if (!(err instanceof UnknownRunError)) throw err;
      io.stderr.write(`sealer: ${err.message} (see sealer runs)\n`);
      process.exitCode = 1;
      return;
    }
    if (!retryOk(result)) process.exitCode = 1;
    if (opts.json) {
      io.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    for (const r of result.requeued) io.stdout.write(`requeued ${r.tenant} ${r.invoice} (job ${r.jobId})\n`);
    for (const r of result.alreadySealed)
      io.stdout.write(`already sealed ${r.tenant} ${r.invoice} (job ${r.jobId}): ${r.file}\n`);
    for (const r of result.notFailed)
      io.stdout.write(`not failed ${r.tenant} ${r.invoice} (job ${r.jobId}): ${r.state}, left as it is\n`);
    for (const id of result.unknown) io.stdout.write(`unknown job ${id}: not in the queue, not sealed\n`);
    const nothing =
      result.requeued.length +
        result.alreadySealed.length +
        result.notFailed.length +
        result.unknown.length ===
      0;
    io.stdout.write(
      nothing
        ? 'retry: nothing to retry\n'
        : `retry: ${result.requeued.length} requeued, ${result.alreadySealed.length} already sealed, ` +
            `${result.notFailed.length} not failed, ${result.unknown.length} unknown\n`,
    );
  } finally {
    await queue.close();
    await ctx.release();
  }
}
