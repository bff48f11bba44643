// The producer: reads one core-system export and enqueues one BullMQ job per invoice, in addBulk chunks,
// with deterministic job IDs so a re-run enqueues nothing twice: an invoice whose job is still in Redis
// is already queued, one the outbox's sealed index lists is already sealed (completed jobs leave Redis at
// once). It takes an export only once the job's rule says it is complete, and moves it to processed/
// only after every row is enqueued, recognised or rejected.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import { glob } from 'tinyglobby';
import {
  ExportError,
  exportReadiness,
  exportSnapshot,
  invoiceNumberFold,
  readExport,
  RejectsWriter,
  sameSnapshot,
  type DataExportSummary,
  type ExportSnapshot,
  type ExportSummary,
  type InvoiceRecord,
  type RejectedRow,
} from '../export';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { sealJobId, type SealJobData } from './seal-job';
import type { SealQueues } from './seal-queue';
import { addRunCounts, expectRows, recordOutcomes, settleRun, type RunCounts } from './run-record';
import { findSealed } from '../outbox';
import { clearCredentialLatch } from '../custody';
import { runDate as runDateOf, runId as runIdOf } from './run-clock';
import { reportSettledRun } from './report-run';
import { ProducerError } from './producer-error';
import { dataExportEntries, dataExportFiles, isDetailFile, type DataExportEntry } from './data-export-source';
import { InvoiceSpool } from './invoice-spool';

export { ProducerError };

export interface ProduceOptions {
  queue: SealQueues;
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** the run's clock: its ID and date, and what an export's quiet period is measured against */
  now?: Date;
  /** jobs per addBulk call */
  chunkSize?: number;
  /** move the export to <folder>/processed/ when done (default true) */
  moveProcessed?: boolean;
  onProgress?: (p: { file: string; rows: number }) => void;
  /**
   * Most jobs a tenant's queue may hold ready to run (waiting, prioritised) before the producer waits
   * for the workers to take some: Redis then holds a window of a large night, not all of it (a queued
   * job costs about 1.6 KB; a million at once would be 1.6 GB). Default DEFAULT_MAX_QUEUED; 0 never waits.
   */
  maxQueued?: number;
  /** How often a paused producer looks at the queue again (ms; default 500). */
  pacePollMs?: number;
  /** Told while the producer waits for room, each time it looks. */
  onPaused?: (p: { file: string; tenant: string; queued: number; maxQueued: number }) => void;
}

/** Jobs ready to run per tenant queue before the producer waits (about 80 MB of Redis). */
export const DEFAULT_MAX_QUEUED = 50_000;

/**
 * What the producer counts of an export: rows = enqueued + duplicates + alreadySealed + rejected.
 * `duplicates` are invoices whose job is still queued (waiting, active, delayed); `alreadySealed` ones
 * the tenant's sealed index lists, which are not queued again and count in their run as already sealed
 * (the run's `enqueued` includes them: every invoice the run took on is sealed, already sealed, failed
 * or still waiting).
 */
export interface ProduceCounts extends Pick<RunCounts, 'rows' | 'enqueued' | 'duplicates' | 'rejected'> {
  alreadySealed: number;
}

export interface FileResult extends ProduceCounts {
  file: string;
  /** of the enqueued: invoices whose earlier job had failed, queued again */
  requeued: number;
  encoding: ExportSummary['encoding'];
  rejectsFile?: string;
  /** a data export's invoice spool: the records its rendered invoices are drawn from */
  spoolFile?: string;
  processedTo?: string;
  /** the export was gone when this run moved it: another producer of the same file moved it first */
  movedByAnotherProducer?: true;
  /** set when the export changed while it was read: it stays in place (what was read is queued) */
  leftInPlace?: string;
}

/** An export the job's rule does not yet call complete: left in place for the next run. */
export interface NotReadyFile {
  file: string;
  reason: string;
}

export interface ProduceResult {
  runId: string;
  runDate: string;
  files: FileResult[];
  totals: ProduceCounts;
  failedFiles: { file: string; error: string }[];
  /** exports left in place because they are not yet complete (or changed while read) */
  notReady: NotReadyFile[];
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
  const marker = 'marker' in job.export.ready ? job.export.ready.marker : undefined;
  const files = (
    await glob(job.export.glob, {
      cwd: job.exportFolder,
      absolute: true,
      onlyFiles: true,
      deep: 1,
    })
  ).filter((f) => marker === undefined || !f.endsWith(marker));
  // A data export of two files: its detail files are read with their header file, never on their own.
  const layout = job.export.data?.layout;
  const exportsOnly =
    layout?.kind === 'two-files' ? files.filter((f) => !isDetailFile(f, layout.details)) : files;
  const stats = await Promise.all(exportsOnly.map(async (f) => ({ f, t: (await fsp.stat(f)).mtimeMs })));
  return stats.sort((a, b) => a.t - b.t || a.f.localeCompare(b.f)).map((s) => s.f);
}

/** How long a chunk may hold its tenant's enqueue lock if its producer dies holding it. */
const ENQUEUE_LOCK_TTL_MS = 30_000;
const RELEASE_LUA = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Records each (folded, as given) invoice number for the tenant unless its folded form is recorded
 * already; returns what is recorded for each, so a caller sees a number that differs only in case.
 */
const CLAIM_CASE_LUA = `
local out = {}
for i = 1, #ARGV, 2 do
  redis.call('hsetnx', KEYS[1], ARGV[i], ARGV[i + 1])
  out[#out + 1] = redis.call('hget', KEYS[1], ARGV[i])
end
return out`;

/** The tenant's record of invoice numbers enqueued, folded: one outbox folder and one sealed index hold them. */
export function invoiceCaseKey(prefix: string, tenant: string): string {
  return `${prefix}:invoice-case:${tenant}`;
}

/**
 * Chunks of one tenant are checked and added one at a time (across processes), so that two producers
 * of one export count each job once: as enqueued by one, as a duplicate by the other. Held for one
 * chunk's few Redis round trips, not for the file.
 */
async function withEnqueueLock<T>(opts: ProduceOptions, tenant: string, fn: () => Promise<T>): Promise<T> {
  const key = `${opts.prefix}:enqueue-lock:${tenant}`;
  const token = crypto.randomUUID();
  const giveUpAt = Date.now() + 2 * ENQUEUE_LOCK_TTL_MS;
  while ((await opts.redis.set(key, token, 'PX', ENQUEUE_LOCK_TTL_MS, 'NX')) !== 'OK') {
    if (Date.now() > giveUpAt) {
      throw new ProducerError(
        `tenant ${tenant}: the enqueue lock ${key} stayed held for ${2 * ENQUEUE_LOCK_TTL_MS} ms`,
      );
    }
    await delay(5 + Math.random() * 20);
  }
  try {
    return await fn();
  } finally {
    await opts.redis.eval(RELEASE_LUA, 1, key, token).catch(() => undefined);
  }
}

interface ChunkResult {
  enqueued: number;
  duplicates: number;
  alreadySealed: number;
  requeued: number;
  /** rows whose invoice number differs only in case from one the tenant already enqueued */
  caseClashes: RejectedRow[];
}

/** An invoice waiting for its chunk: a PDF export's row (its file hashed with the chunk), or a
 * rendered invoice whose record is in the spool (durable before the chunk is queued). */
type PendingInvoice =
  { kind: 'pdf'; record: InvoiceRecord } | { kind: 'rendered'; data: Omit<SealJobData, keyof JobBase> };

type JobBase = Pick<SealJobData, 'tenant' | 'jobName' | 'runId' | 'runDate' | 'exportFile'>;

async function enqueueChunk(
  pending: PendingInvoice[],
  base: JobBase,
  outboxRoot: string,
  opts: ProduceOptions,
): Promise<ChunkResult> {
  const datas: SealJobData[] = await Promise.all(
    pending.map(async (p): Promise<SealJobData> => {
      if (p.kind === 'rendered') return { ...base, ...p.data };
      const r = p.record;
      const { sha256, length } = await sha256File(r.pdfPath);
      return {
        ...base,
        invoiceNumber: r.invoiceNumber,
        sourcePath: r.pdfPath,
        sourceSha256: sha256,
        sourceLength: length,
        line: r.line,
        customer: r.customerName,
        amount: r.amount,
        ...(r.issueDate === undefined ? {} : { issueDate: r.issueDate }),
      };
    }),
  );
  return withEnqueueLock(opts, base.tenant, async () => {
    const recorded = (await opts.redis.eval(
      CLAIM_CASE_LUA,
      1,
      invoiceCaseKey(opts.prefix, base.tenant),
      ...datas.flatMap((d) => [invoiceNumberFold(d.invoiceNumber), d.invoiceNumber]),
    )) as string[];
    const caseClashes: RejectedRow[] = [];
    const candidates = datas.filter((d, i) => {
      if (recorded[i] === d.invoiceNumber) return true;
      caseClashes.push({
        line: d.line,
        invoiceNumber: d.invoiceNumber,
        reason:
          `invoice number ${d.invoiceNumber} differs only in letter case from ${recorded[i]}, which tenant ` +
          `${base.tenant} already enqueued from an earlier export (the two would clash on a case-insensitive share)`,
      });
      return false;
    });
    const ids = candidates.map(sealJobId);
    // BullMQ skips an existing jobId on its own; asking first lets the run report duplicates, and
    // re-queue invoices whose earlier job failed for good (a re-run is how ops retries a night).
    // One round trip per chunk: does the job hash exist, and is its ID in the failed sorted set.
    const pipeline = opts.redis.pipeline();
    const queue = opts.queue.forTenant(base.tenant);
    const failedKey = queue.toKey('failed');
    for (const id of ids) pipeline.exists(queue.toKey(id)).zscore(failedKey, id);
    const replies = (await pipeline.exec()) ?? [];
    const unseen: { data: SealJobData; id: string }[] = [];
    const fresh: SealJobData[] = [];
    let requeued = 0;
    const reply = (at: number): unknown => {
      const [err, value] = replies[at] ?? [new ProducerError(`no reply ${at} from Redis`), undefined];
      if (err) throw err;
      return value;
    };
    for (const [i, data] of candidates.entries()) {
      const exists = reply(2 * i);
      const score = reply(2 * i + 1);
      if (exists !== 1) {
        unseen.push({ data, id: ids[i]! });
      } else if (score !== null && (await queue.remove(ids[i]!)) === 1) {
        // Failed for good earlier: a re-run is how ops retries it. (A job that cannot be removed,
        // e.g. locked, stays and counts as a duplicate.)
        requeued++;
        fresh.push(data);
      }
    }
    // No job in Redis: new, or completed and removed. Asked after Redis (a job completing meanwhile
    // recorded its seal in the index before it completed), under the lock, so no producer races it.
    const sealed = await Promise.all(
      unseen.map((u) =>
        findSealed(outboxRoot, base.tenant, u.data.invoiceNumber, u.data.sourceSha256).catch(
          (err: unknown) => {
            throw new ProducerError(`invoice ${u.data.invoiceNumber}: ${(err as Error).message}`, {
              cause: err,
            });
          },
        ),
      ),
    );
    const alreadySealed = unseen.filter((_, i) => sealed[i] !== undefined);
    for (const [i, u] of unseen.entries()) if (sealed[i] === undefined) fresh.push(u.data);
    // Counted in this run as already sealed (and as taken on: see ProduceCounts), listed in its report.
    await recordOutcomes(
      opts.redis,
      opts.prefix,
      base.runId,
      alreadySealed.map((u) => ({
        jobId: u.id,
        outcome: 'alreadySealed' as const,
        invoice: { invoice: u.data.invoiceNumber, line: u.data.line, exportFile: u.data.exportFile },
      })),
    );
    if (fresh.length) {
      await opts.queue.addBulk(
        fresh.map((data) => ({ name: data.jobName, data, opts: { jobId: sealJobId(data) } })),
      );
    }
    return {
      enqueued: fresh.length,
      duplicates: candidates.length - fresh.length - alreadySealed.length,
      alreadySealed: alreadySealed.length,
      requeued,
      caseClashes,
    };
  });
}

/**
 * Waits while the tenant's queue holds more jobs ready to run than maxQueued allows with `adding` more.
 * Delayed jobs (waiting for an approval or a retry) are not counted: a tenant that has not approved yet
 * must not stop its own export from being read. With no worker taking jobs it waits, saying so; the
 * export stays in place until it is read whole, and a re-run skips what was queued.
 */
async function waitForRoom(
  tenant: string,
  file: string,
  adding: number,
  opts: ProduceOptions,
): Promise<void> {
  const maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
  if (maxQueued <= 0) return;
  const queue = opts.queue.forTenant(tenant);
  let warnedAt = 0;
  for (;;) {
    const counts = await queue.getJobCounts('wait', 'prioritized');
    const queued = (counts.wait ?? 0) + (counts.prioritized ?? 0);
    if (queued === 0 || queued + adding <= maxQueued) return;
    opts.onPaused?.({ file, tenant, queued, maxQueued });
    if (Date.now() - warnedAt >= 60_000) {
      warnedAt = Date.now();
      opts.logger.info(
        { tenant, file, queued, maxQueued },
        'queue holds maxQueued jobs ready to run; waiting for the workers to take some',
      );
    }
    await delay(opts.pacePollMs ?? 500);
  }
}

/** Line feeds in `file` (0x0A is never part of a multibyte character in UTF-8 or Shift_JIS). */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
  }
  return lines;
}

/** An export judged complete: its snapshot, its marker, and the other files of a data export. */
interface ReadyExport {
  snapshot: ExportSnapshot;
  markerFile?: string;
  /** a two-files data export's detail file, as it was judged complete */
  others: { file: string; snapshot: ExportSnapshot }[];
}

/**
 * Is the export complete, every file of it? A data export's detail file must be there, and quiet
 * under a quiet rule; under a marker rule the header file's marker vouches for both, so the detail
 * file must not have changed after the marker was written.
 */
async function readiness(
  file: string,
  job: JobDefinition,
  now: Date,
): Promise<{ ready: true; export: ReadyExport } | { ready: false; reason: string }> {
  const main = await exportReadiness(file, job.export.ready, now);
  if (!main.ready) return main;
  const others: ReadyExport['others'] = [];
  for (const other of job.export.data ? dataExportFiles(file, job.export.data).slice(1) : []) {
    if (!(await exists(other))) {
      return { ready: false, reason: `its detail file ${other} is not there (yet)` };
    }
    const rule = 'quietSec' in job.export.ready ? job.export.ready : { quietSec: 0 };
    const ready = await exportReadiness(other, rule, now);
    if (!ready.ready) return { ready: false, reason: `its detail file ${other}: ${ready.reason}` };
    if (main.markedAtMs !== undefined && main.markedAtMs < ready.snapshot.mtimeMs) {
      return {
        ready: false,
        reason: `its detail file ${other} changed after the marker ${main.markerFile} was written: not marked complete`,
      };
    }
    others.push({ file: other, snapshot: ready.snapshot });
  }
  return {
    ready: true,
    export: { snapshot: main.snapshot, ...(main.markerFile && { markerFile: main.markerFile }), others },
  };
}

async function produceFile(
  file: string,
  job: JobDefinition,
  ids: { runId: string; runDate: string },
  opts: ProduceOptions,
  ready: ReadyExport,
): Promise<FileResult> {
  const chunkSize = opts.chunkSize ?? 200;
  const base: JobBase = {
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
    alreadySealed: 0,
    rejected: 0,
    requeued: 0,
  };
  let pending: PendingInvoice[] = [];
  // A data export's invoices are spooled as they are read; a chunk's records are durable before its jobs.
  const spool = job.export.data ? InvoiceSpool.forExport(file, ids.runId) : undefined;
  /** One rejected row of a PDF export, or one rejected invoice (all its problems) of a data export. */
  const reject = async (rows: RejectedRow[]) => {
    result.rejected++;
    for (const row of rows) {
      await rejects.add(row);
      opts.logger.warn({ file, ...row }, 'row rejected');
    }
  };
  const flush = async () => {
    let r: ChunkResult;
    try {
      await spool?.sync();
      await waitForRoom(job.tenant, file, pending.length, opts);
      r = await enqueueChunk(pending, base, job.outboxRoot, opts);
    } catch (err) {
      // The file stays where it is; a re-run skips what this run did enqueue.
      throw new ProducerError(
        `${file}: enqueueing failed after ${result.enqueued + result.duplicates + result.alreadySealed} row(s) were queued or recognised; ` +
          `the export stays in place and a re-run skips those: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    result.enqueued += r.enqueued;
    result.duplicates += r.duplicates;
    result.alreadySealed += r.alreadySealed;
    result.requeued += r.requeued;
    // Counted per chunk, so that a file failing midway still counts the invoices it did queue (the
    // workers will seal them) and the run settles on exact numbers.
    await addRunCounts(opts.redis, opts.prefix, ids.runId, {
      enqueued: r.enqueued + r.alreadySealed,
      duplicates: r.duplicates,
    });
    for (const row of r.caseClashes) await reject([row]);
    pending = [];
    opts.onProgress?.({ file, rows: result.rows });
  };
  const add = async (invoice: PendingInvoice) => {
    pending.push(invoice);
    if (pending.length >= chunkSize) await flush();
  };
  let changedBeforeQueueing: string | undefined;
  try {
    if (spool !== undefined) {
      // Every row is read before the first invoice is queued: a file changed meanwhile (a detail file
      // still being copied) queues nothing, since its invoices' data, so their digests, may be partial.
      const unchanged = async () => {
        const changed = await changedWhileRead(file, ready);
        if (changed !== undefined) throw new ChangedWhileRead(changed);
      };
      await readDataRows(file, job, ids.runId, opts, result, { spool, add, reject, unchanged });
    } else await readPdfRows(file, job, result, { add, reject });
    if (pending.length) await flush();
  } catch (err) {
    if (!(err instanceof ChangedWhileRead)) throw err;
    changedBeforeQueueing = err.message;
  } finally {
    await rejects.close();
    await spool?.close();
  }
  if (result.rejected) result.rejectsFile = rejectsFile;
  if (spool !== undefined && spool.records > 0) result.spoolFile = spool.file;
  if (result.rows !== result.enqueued + result.duplicates + result.alreadySealed + result.rejected) {
    throw new ProducerError(
      `${file}: ${result.rows} rows but ${result.enqueued} enqueued + ${result.duplicates} duplicates + ` +
        `${result.alreadySealed} already sealed + ${result.rejected} rejected`,
    );
  }
  // A writer that appended or rewrote the file meanwhile is still at it: what was read (whole lines
  // up to the size seen at the start) stays queued, the file stays for a run that sees it complete.
  if (changedBeforeQueueing !== undefined) {
    result.leftInPlace = `${changedBeforeQueueing}: none of its invoices was queued, the file stays for the next run`;
    return result;
  }
  const changed = await changedWhileRead(file, ready);
  if (changed !== undefined) {
    result.leftInPlace = `${changed}: the ${result.rows} row(s) read are counted, the file stays for the next run`;
    return result;
  }
  if (opts.moveProcessed ?? true) {
    await moveProcessed(file, ids.runId, ready.markerFile, result);
    for (const other of ready.others) await moveAlong(other.file, ids.runId);
  }
  return result;
}

interface RowSink {
  add: (invoice: PendingInvoice) => Promise<void>;
  reject: (rows: RejectedRow[]) => Promise<void>;
}

/** A PDF export: one row per invoice, each naming its PDF. */
async function readPdfRows(
  file: string,
  job: JobDefinition,
  result: FileResult,
  sink: RowSink,
): Promise<void> {
  const mapping = job.export.columns;
  if (mapping === undefined) throw new ProducerError(`job ${job.name}: export.columns is missing`);
  const rows = readExport(file, { mapping, encoding: job.export.encoding });
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
        return;
      }
      result.rows++;
      if (next.value.ok) await sink.add({ kind: 'pdf', record: next.value.invoice });
      else await sink.reject([next.value.rejected]);
    }
  } finally {
    // Closes the export when a failure stopped the read early (a no-op once the reader is done).
    await rows.return(undefined as never);
  }
}

/**
 * A data export: its invoices grouped, validated and computed; each valid one spooled and queued as a
 * rendered invoice. `rows` counts the export's invoices, and the rows that belong to none.
 */
async function readDataRows(
  file: string,
  job: JobDefinition,
  runId: string,
  opts: ProduceOptions,
  result: FileResult,
  sink: RowSink & { spool: InvoiceSpool; unchanged: () => Promise<void> },
): Promise<void> {
  const entries = dataExportEntries(file, job, {
    // Once every row is read the invoices to come are known: what sizes the authorisations.
    onRowsRead: async (invoices) => {
      await sink.unchanged();
      await expectRows(opts.redis, opts.prefix, runId, invoices);
    },
  });
  try {
    for (;;) {
      const next: IteratorResult<DataExportEntry, DataExportSummary> = await entries.next();
      if (next.done) {
        result.encoding = next.value.files[0]?.encoding ?? 'utf8';
        const items = next.value.invoices + next.value.rejected;
        if (items !== result.rows) {
          throw new ProducerError(
            `${file}: reader gave ${next.value.invoices} invoices and ${next.value.rejected} rejected rows, producer saw ${result.rows}`,
          );
        }
        return;
      }
      result.rows++;
      if (!next.value.ok) {
        await sink.reject(next.value.rejected);
        continue;
      }
      const e = next.value.entry;
      const at = sink.spool.append(e.record);
      await sink.add({
        kind: 'rendered',
        data: {
          invoiceNumber: e.invoiceNumber,
          sourcePath: sink.spool.file,
          sourceSha256: crypto.createHash('sha256').update(e.record).digest('hex'),
          sourceLength: e.record.length,
          rendered: at,
          line: e.line,
          customer: e.customer,
          amount: e.amount,
          issueDate: e.issueDate,
          registrationNumber: e.registrationNumber,
        },
      });
    }
  } finally {
    await entries.return(undefined as never);
  }
}

/**
 * Moves a finished export to processed/. Its marker goes first: a marker left behind would vouch for
 * the next export of that name before it is complete. The export already gone means another producer
 * of the same file moved it; every row here was enqueued, a duplicate or rejected, so that is success.
 */
async function moveProcessed(
  file: string,
  runId: string,
  markerFile: string | undefined,
  result: FileResult,
): Promise<void> {
  if (markerFile !== undefined) {
    await fsp.rm(markerFile, { force: true }).catch((err: unknown) => {
      throw new ProducerError(`${file}: cannot remove its marker ${markerFile}`, { cause: err });
    });
  }
  const dir = path.join(path.dirname(file), 'processed');
  await fsp.mkdir(dir, { recursive: true });
  const to = path.join(dir, `${runId}-${path.basename(file)}`);
  try {
    await fsp.rename(file, to);
    result.processedTo = to;
  } catch (err) {
    const gone = (err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(file));
    if (!gone) throw new ProducerError(`${file}: cannot move it to ${dir}`, { cause: err });
    result.movedByAnotherProducer = true;
  }
}

/** Thrown when a data export changed while its rows were read, before any invoice was queued. */
class ChangedWhileRead extends Error {}

/** How a file of the export changed since it was judged complete, if it did. */
async function changedWhileRead(file: string, ready: ReadyExport): Promise<string | undefined> {
  for (const { file: f, snapshot } of [{ file, snapshot: ready.snapshot }, ...ready.others]) {
    const after = await exportSnapshot(f).catch(() => undefined);
    if (after !== undefined && !sameSnapshot(after, snapshot)) {
      return `${f === file ? '' : `its detail file ${f} `}changed while it was read (${snapshot.size} → ${after.size} bytes)`;
    }
  }
  return undefined;
}

/** A data export's other file (its detail file) follows the main file to processed/. */
async function moveAlong(file: string, runId: string): Promise<void> {
  const to = path.join(path.dirname(file), 'processed', `${runId}-${path.basename(file)}`);
  try {
    await fsp.rename(file, to);
  } catch (err) {
    // Gone: another producer of this export moved it (it may have moved it before or after the main
    // file, whichever of the two this producer moved); every row was read and enqueued all the same.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(file))) return;
    throw new ProducerError(`${file}: cannot move it to ${path.dirname(to)}`, { cause: err });
  }
}

/** An export that could not be opened because it is not there (ENOENT). */
function isGone(err: unknown): boolean {
  return err instanceof ExportError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
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
    totals: { rows: 0, enqueued: 0, duplicates: 0, alreadySealed: 0, rejected: 0 },
    failedFiles: [],
    notReady: [],
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
      level: job.signing.level,
      state: 'producing',
    },
  );
  const leaveInPlace = async (file: string, reason: string) => {
    result.notReady.push({ file, reason });
    opts.logger.warn(
      { file, job: job.name, runId: ids.runId, reason },
      'export not complete: left for the next run',
    );
    await addRunCounts(
      opts.redis,
      opts.prefix,
      ids.runId,
      {},
      { [`notReady:${path.basename(file)}`]: reason },
    );
  };
  for (const file of files) {
    try {
      const ready = await readiness(file, job, now);
      if (!ready.ready) {
        await leaveInPlace(file, ready.reason);
        continue;
      }
      // Rows to come, for sizing authorisations while the file is read (an estimate: quoted line
      // breaks count too; never a count that settles anything). A data export's lines are not its
      // invoices: it says how many once its rows are read.
      const expected = job.export.data ? 0 : Math.max(0, (await countLines(file)) - 1);
      await expectRows(opts.redis, opts.prefix, ids.runId, expected);
      const fr = await produceFile(file, job, ids, opts, ready.export).finally(() =>
        expectRows(opts.redis, opts.prefix, ids.runId, 0),
      );
      if (fr.leftInPlace !== undefined) await leaveInPlace(file, fr.leftInPlace);
      result.files.push(fr);
      for (const k of ['rows', 'enqueued', 'duplicates', 'alreadySealed', 'rejected'] as const)
        result.totals[k] += fr[k];
      await addRunCounts(opts.redis, opts.prefix, ids.runId, { rows: fr.rows, rejected: fr.rejected });
      // Ops' way to retry is to run the export again: failed invoices queued again may meet a
      // credential stopped by a refused factor, which that retry releases, for every worker.
      if (fr.requeued > 0) {
        const released = await clearCredentialLatch(opts.redis, opts.prefix, {
          tenant: job.tenant,
          credentialId: job.signing.credentialId,
        });
        if (released.length) {
          opts.logger.info(
            { job: job.name, credentialId: job.signing.credentialId },
            'credential latch cleared by a retry',
          );
        }
      }
      opts.logger.info({ job: job.name, runId: ids.runId, ...fr }, 'export enqueued');
    } catch (err) {
      // Listed a moment ago and gone before any row was read: another producer of this export took
      // it. (A given --file that does not exist stays an error.)
      if (!opts.file && isGone(err) && !(await exists(file))) {
        opts.logger.info(
          { file, job: job.name, runId: ids.runId },
          'export gone before it was read: taken by another producer',
        );
        continue;
      }
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
  if (settled) await reportSettledRun({ ...opts, runId: ids.runId, counts: settled, job });
  return result;
}
