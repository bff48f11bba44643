// The producer: reads one core-system export and enqueues one BullMQ job per invoice, in addBulk chunks,
// with deterministic job IDs so a re-run enqueues nothing twice. The export moves to processed/ only
// after every row is either enqueued or rejected.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { glob } from 'tinyglobby';
import { readExport, RejectsWriter, type ExportSummary, type InvoiceRecord } from '../export';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { SealerError } from '../common/errors';
import { sealJobId, type SealJobData } from './seal-job';
import { addRunCounts, settleRun, type RunCounts } from './run-record';
import { runDate as runDateOf, runId as runIdOf } from './run-clock';

export class ProducerError extends SealerError {}

export interface ProduceOptions {
  queue: Queue<SealJobData>;
  redis: Redis;
  prefix: string;
  logger: Logger;
  now?: Date;
  /** jobs per addBulk call */
  chunkSize?: number;
  /** move the export to <folder>/processed/ when done (default true) */
  moveProcessed?: boolean;
  onProgress?: (p: { file: string; rows: number }) => void;
}

export interface FileResult extends Pick<RunCounts, 'rows' | 'enqueued' | 'duplicates' | 'rejected'> {
  file: string;
  /** of the enqueued: invoices whose earlier job had failed, queued again */
  requeued: number;
  encoding: ExportSummary['encoding'];
  rejectsFile?: string;
  processedTo?: string;
}

export interface ProduceResult {
  runId: string;
  runDate: string;
  files: FileResult[];
  totals: Pick<RunCounts, 'rows' | 'enqueued' | 'duplicates' | 'rejected'>;
  failedFiles: { file: string; error: string }[];
}

function sha256File(file: string): Promise<{ sha256: string; length: number }> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    let length = 0;
    fs.createReadStream(file)
      .on('data', (chunk) => {
        hash.update(chunk);
        length += chunk.length;
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: hash.digest('hex'), length }));
  });
}

/** The job's export files, oldest first. A missing export folder is an error (a wrong path or an
 * unmounted share must not pass for a quiet night); an existing but empty folder is zero files. */
export async function findExports(job: JobDefinition): Promise<string[]> {
  let folder: fs.Stats;
  try {
    folder = await fsp.stat(job.exportFolder);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new ProducerError(`job ${job.name}: export folder ${job.exportFolder} ${reason}`, { cause: err });
  }
  if (!folder.isDirectory()) {
    throw new ProducerError(`job ${job.name}: export folder ${job.exportFolder} is not a folder`);
  }
  const files = await glob(job.export.glob, {
    cwd: job.exportFolder,
    absolute: true,
    onlyFiles: true,
    deep: 1,
  });
  const stats = await Promise.all(files.map(async (f) => ({ f, t: (await fsp.stat(f)).mtimeMs })));
  return stats.sort((a, b) => a.t - b.t || a.f.localeCompare(b.f)).map((s) => s.f);
}

async function enqueueChunk(
  records: InvoiceRecord[],
  base: Omit<SealJobData, 'invoiceNumber' | 'sourcePath' | 'sourceSha256' | 'sourceLength' | 'line'>,
  opts: ProduceOptions,
): Promise<{ enqueued: number; duplicates: number; requeued: number }> {
  const datas: SealJobData[] = await Promise.all(
    records.map(async (r) => {
      const { sha256, length } = await sha256File(r.pdfPath);
      return {
        ...base,
        invoiceNumber: r.invoiceNumber,
        sourcePath: r.pdfPath,
        sourceSha256: sha256,
        sourceLength: length,
        line: r.line,
      };
    }),
  );
  const ids = datas.map(sealJobId);
  // BullMQ skips an existing jobId on its own; asking first lets the run report duplicates, and
  // re-queue invoices whose earlier job failed for good (a re-run is how ops retries a night).
  const pipeline = opts.redis.pipeline();
  for (const id of ids) pipeline.exists(`${opts.prefix}:${opts.queue.name}:${id}`);
  const exists = ((await pipeline.exec()) ?? []).map(([, n]) => n === 1);
  let requeued = 0;
  const fresh: SealJobData[] = [];
  for (const [i, data] of datas.entries()) {
    if (!exists[i]) {
      fresh.push(data);
    } else if ((await opts.queue.getJobState(ids[i]!)) === 'failed') {
      await (await opts.queue.getJob(ids[i]!))?.remove();
      fresh.push(data);
      requeued++;
    }
  }
  if (fresh.length) {
    await opts.queue.addBulk(
      fresh.map((data) => ({ name: data.jobName, data, opts: { jobId: sealJobId(data) } })),
    );
  }
  return { enqueued: fresh.length, duplicates: datas.length - fresh.length, requeued };
}

async function produceFile(
  file: string,
  job: JobDefinition,
  ids: { runId: string; runDate: string },
  opts: ProduceOptions,
) {
  const chunkSize = opts.chunkSize ?? 200;
  const base = {
    tenant: job.tenant,
    jobName: job.name,
    runId: ids.runId,
    runDate: ids.runDate,
    exportFile: file,
  };
  const rejectsDir = path.join(job.exportFolder, 'rejects');
  const rejectsFile = path.join(rejectsDir, `${path.basename(file)}.${ids.runId}.rejects.csv`);
  const rejects = new RejectsWriter(rejectsFile);
  const result: FileResult = {
    file,
    encoding: 'utf8',
    rows: 0,
    enqueued: 0,
    duplicates: 0,
    rejected: 0,
    requeued: 0,
  };
  let pending: InvoiceRecord[] = [];
  const flush = async () => {
    let r: Awaited<ReturnType<typeof enqueueChunk>>;
    try {
      r = await enqueueChunk(pending, base, opts);
    } catch (err) {
      // The file stays where it is; a re-run skips what this run did enqueue.
      throw new ProducerError(
        `${file}: enqueueing failed after ${result.enqueued + result.duplicates} row(s) were queued; ` +
          `the export stays in place and a re-run skips those: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    result.enqueued += r.enqueued;
    result.duplicates += r.duplicates;
    result.requeued += r.requeued;
    pending = [];
    opts.onProgress?.({ file, rows: result.rows });
  };
  const rows = readExport(file, { mapping: job.export.columns, encoding: job.export.encoding });
  try {
    for (;;) {
      const next = await rows.next();
      if (next.done) {
        result.encoding = next.value.encoding;
        if (next.value.rows !== result.rows) {
          throw new ProducerError(
            `${file}: reader counted ${next.value.rows} rows, producer saw ${result.rows}`,
          );
        }
        break;
      }
      result.rows++;
      if (next.value.ok) {
        pending.push(next.value.invoice);
        if (pending.length >= chunkSize) await flush();
      } else {
        result.rejected++;
        await rejects.add(next.value.rejected);
        opts.logger.warn({ file, ...next.value.rejected }, 'row rejected');
      }
    }
    if (pending.length) await flush();
  } finally {
    // Closes the export when a failure stopped the read early (a no-op once the reader is done).
    await rows.return(undefined as never);
    await rejects.close();
  }
  if (result.rejected) result.rejectsFile = rejectsFile;
  if (result.rows !== result.enqueued + result.duplicates + result.rejected) {
    throw new ProducerError(
      `${file}: ${result.rows} rows but ${result.enqueued} enqueued + ${result.duplicates} duplicates + ${result.rejected} rejected`,
    );
  }
  if (opts.moveProcessed ?? true) {
    const dir = path.join(path.dirname(file), 'processed');
    await fsp.mkdir(dir, { recursive: true });
    result.processedTo = path.join(dir, `${ids.runId}-${path.basename(file)}`);
    await fsp.rename(file, result.processedTo);
  }
  return result;
}

/** Produces one run of `job`: every export file found (or the one given) is read and enqueued. */
export async function produceRun(
  job: JobDefinition,
  opts: ProduceOptions & { file?: string },
): Promise<ProduceResult> {
  const now = opts.now ?? new Date();
  const ids = { runId: runIdOf(job.name, now, job.timeZone), runDate: runDateOf(now, job.timeZone) };
  const files = opts.file ? [path.resolve(opts.file)] : await findExports(job);
  const result: ProduceResult = {
    ...ids,
    files: [],
    totals: { rows: 0, enqueued: 0, duplicates: 0, rejected: 0 },
    failedFiles: [],
  };
  await addRunCounts(
    opts.redis,
    opts.prefix,
    ids.runId,
    {},
    {
      job: job.name,
      tenant: job.tenant,
      runDate: ids.runDate,
      startedAt: now.toISOString(),
      state: 'producing',
    },
  );
  for (const file of files) {
    try {
      const fr = await produceFile(file, job, ids, opts);
      result.files.push(fr);
      for (const k of ['rows', 'enqueued', 'duplicates', 'rejected'] as const) result.totals[k] += fr[k];
      await addRunCounts(opts.redis, opts.prefix, ids.runId, {
        rows: fr.rows,
        enqueued: fr.enqueued,
        duplicates: fr.duplicates,
        rejected: fr.rejected,
      });
      opts.logger.info({ job: job.name, runId: ids.runId, ...fr }, 'export enqueued');
    } catch (err) {
      // A file-level failure (unreadable, wrong encoding, missing column) stops that file only; it stays
      // in place for a fix and a re-run, and what was enqueued from it is deduplicated then.
      const message = err instanceof Error ? err.message : String(err);
      result.failedFiles.push({ file, error: message });
      opts.logger.error({ err, file, job: job.name }, 'export failed');
      await addRunCounts(
        opts.redis,
        opts.prefix,
        ids.runId,
        {},
        { [`error:${path.basename(file)}`]: message },
      );
    }
  }
  await addRunCounts(opts.redis, opts.prefix, ids.runId, {}, { state: 'produced' });
  // Workers may have finished every invoice before the run was marked produced.
  const settled = await settleRun(opts.redis, opts.prefix, ids.runId);
  if (settled) opts.logger.info({ runId: ids.runId, ...settled }, 'run settled');
  return result;
}
