import { openSealQueue, Scheduler } from '../../queue';
import { openContext, type CommonOptions } from '../context';

export async function scheduleCommand(opts: CommonOptions): Promise<void> {
  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 });
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
        console.error(
          `${job.name}: run ${result.runId}: ${result.totals.enqueued} enqueued, ${result.totals.rejected} rejected`,
        );
      }
    },
  });
  scheduler.start();
  console.error(
    `scheduling ${ctx.jobs.length} job(s): ${ctx.jobs.map((j) => `${j.name} "${j.cron}" ${j.timeZone}`).join(', ')}`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await scheduler.stop();
  await queue.close();
  await ctx.release();
  console.error(`scheduler stopped after ${runs} run(s)`);
}
