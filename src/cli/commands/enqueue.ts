import { findJob } from '../../jobs';
import { openSealQueue, produceRun } from '../../queue';
import { openContext, type CommonOptions } from '../context';

export async function enqueueCommand(
  jobName: string,
  opts: CommonOptions & { file?: string },
): Promise<void> {
  const ctx = await openContext(opts);
  const queue = openSealQueue(ctx.connection, ctx.prefix);
  try {
    const job = findJob(ctx.jobs, jobName);
    const result = await produceRun(job, {
      queue,
      redis: ctx.redis,
      prefix: ctx.prefix,
      logger: ctx.logger,
      file: opts.file,
      onProgress: (p) => process.stderr.write(`\r${p.file}: ${p.rows} rows read`),
    });
    process.stderr.write('\n');
    for (const f of result.files) {
      console.log(
        `${f.file}: ${f.rows} rows, ${f.enqueued} enqueued` +
          (f.requeued ? ` (${f.requeued} of them failed before and are queued again)` : '') +
          `, ${f.duplicates} already queued or sealed, ${f.rejected} rejected` +
          (f.rejectsFile ? ` (see ${f.rejectsFile})` : ''),
      );
    }
    for (const f of result.failedFiles) console.log(`${f.file}: FAILED: ${f.error}`);
    for (const f of result.notReady) console.log(`${f.file}: not complete, left in place: ${f.reason}`);
    const t = result.totals;
    console.log(
      `run ${result.runId}: ${result.files.length + result.failedFiles.length} file(s), ${t.rows} rows: ` +
        `${t.enqueued} enqueued, ${t.duplicates} duplicates, ${t.rejected} rejected, ${result.failedFiles.length} file(s) failed`,
    );
    if (result.failedFiles.length) process.exitCode = 1;
  } finally {
    await queue.close();
    await ctx.release();
  }
}
