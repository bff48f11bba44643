// `sealer enqueue <job>` / `--all`: run producers now. A job whose definition was left out at load is
// named with its reason; with --all the good jobs run all the same and the exit code says one was not.
import { findJob, type JobDefinition } from '../../jobs';
import { openSealQueue, produceRun, type ProduceResult } from '../../queue';
import {
  describeProblem,
  loggerFor,
  openContext,
  processIo,
  type CliIo,
  type CommonOptions,
} from '../context';

export async function enqueueCommand(
  jobName: string | undefined,
  opts: CommonOptions & { file?: string; all?: boolean; maxQueued?: number },
  io: CliIo = processIo,
): Promise<void> {
  if ((jobName === undefined) === !opts.all) {
    throw new Error(jobName ? 'give a job name or --all, not both' : 'give a job name, or --all');
  }
  if (opts.all && opts.file) throw new Error('--file reads one export for one job: name the job');
  const ctx = await openContext(opts, loggerFor(io));
  const queue = openSealQueue(ctx.connection, ctx.prefix);
  try {
    const jobs: JobDefinition[] = jobName ? [findJob(ctx.jobs, jobName, ctx.problems)] : ctx.jobs;
    if (opts.all) for (const p of ctx.problems) io.stderr.write(`${describeProblem(p)}\n`);
    let failed = opts.all && ctx.problems.length > 0;
    const tty = io.stderr.isTTY === true;
    for (const job of jobs) {
      const result = await produceRun(job, {
        queue,
        redis: ctx.redis,
        prefix: ctx.prefix,
        logger: ctx.logger,
        file: opts.file,
        ...(opts.maxQueued !== undefined && { maxQueued: opts.maxQueued }),
        // A redrawn count on a terminal only: on a pipe the per-file lines below say it once.
        onProgress: tty ? (p) => io.stderr.write(`\r${p.file}: ${p.rows} rows read`) : undefined,
        onPaused: tty
          ? (p) =>
              io.stderr.write(
                `\r${p.file}: waiting, ${p.queued} jobs queued for ${p.tenant} (--max-queued ${p.maxQueued})`,
              )
          : undefined,
      });
      if (tty) io.stderr.write('\n');
      report(io, opts.all ? `${job.name}: ` : '', result);
      if (result.failedFiles.length) failed = true;
    }
    if (failed) process.exitCode = 1;
  } finally {
    await queue.close();
    await ctx.release();
  }
}

function report(io: CliIo, label: string, result: ProduceResult): void {
  const line = (text: string) => io.stdout.write(`${label}${text}\n`);
  for (const f of result.files) {
    line(
      `${f.file}: ${f.rows} rows, ${f.enqueued} enqueued` +
        (f.requeued ? ` (${f.requeued} of them failed before and are queued again)` : '') +
        `, ${f.duplicates} already queued, ${f.alreadySealed} already sealed, ${f.rejected} rejected` +
        (f.rejectsFile ? ` (see ${f.rejectsFile})` : ''),
    );
  }
  for (const f of result.failedFiles) line(`${f.file}: FAILED: ${f.error}`);
  for (const f of result.notReady) line(`${f.file}: not complete, left in place: ${f.reason}`);
  const t = result.totals;
  line(
    `run ${result.runId}: ${result.files.length + result.failedFiles.length} file(s), ${t.rows} rows: ` +
      `${t.enqueued} enqueued, ${t.duplicates} already queued, ${t.alreadySealed} already sealed, ${t.rejected} rejected, ` +
      `${result.failedFiles.length} file(s) failed`,
  );
}
