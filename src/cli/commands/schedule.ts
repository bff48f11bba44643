// `sealer schedule`: one cron trigger per good job definition. A definition left out at load is logged
// at error level (by the context) and named on stderr; the other jobs are scheduled all the same.
import { openSealQueue, RenewScheduler, Scheduler, summaryLine } from '../../queue';
import {
  describeProblem,
  loggerFor,
  openContext,
  processIo,
  type CliIo,
  type CommonOptions,
} from '../context';

export async function scheduleCommand(opts: CommonOptions, io: CliIo = processIo): Promise<void> {
  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 }, loggerFor(io));
  const queue = openSealQueue(ctx.connection, ctx.prefix);
  let runs = 0;
  const scheduler = new Scheduler({
    jobs: ctx.jobs,
    queue,
    redis: ctx.redis,
    prefix: ctx.prefix,
    logger: ctx.logger,
    onRun: (job, result) => {
      if (typeof result === 'object' && 'runId' in result) {
        runs++;
        io.stderr.write(
          `${job.name}: run ${result.runId}: ${result.totals.enqueued} enqueued, ${result.totals.rejected} rejected\n`,
        );
      }
    },
  });
  // Jobs with a `renew` block also get a renewal trigger for their tenant (same pass as `sealer renew`).
  const renewals = new RenewScheduler({
    jobs: ctx.jobs,
    connection: ctx.connection,
    redis: ctx.redis,
    prefix: ctx.prefix,
    logger: ctx.logger,
    defaultProviderUrl: process.env.SEALER_PROVIDER_URL,
    onRun: (job, result) => {
      if (typeof result === 'object' && 'checked' in result)
        io.stderr.write(`${job.name}: ${summaryLine(result)}\n`);
    },
  });
  // Listeners go on before anything is announced, so a stop sent on seeing the first line is heard.
  let stop = (): void => undefined;
  const stopped = new Promise<void>((resolve) => (stop = () => resolve()));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  scheduler.start();
  renewals.start();
  for (const p of ctx.problems) io.stderr.write(`${describeProblem(p)}\n`);
  io.stderr.write(
    `scheduling ${ctx.jobs.length} job(s): ${ctx.jobs.map((j) => `${j.name} "${j.cron}" ${j.timeZone}`).join(', ')}` +
      (ctx.problems.length ? `; ${ctx.problems.length} skipped (see above)` : '') +
      (renewals.jobs.length
        ? `; renewal: ${renewals.jobs.map((j) => `${j.name} "${j.renew!.cron}" within ${j.renew!.within}`).join(', ')}`
        : '') +
      '\n',
  );
  try {
    await stopped;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    io.signal?.removeEventListener('abort', stop);
    await scheduler.stop();
    await renewals.stop();
    await queue.close();
    await ctx.release();
  }
  io.stderr.write(`scheduler stopped after ${runs} run(s)\n`);
}
