// The queue's side of a run report: when settleRun hands a caller a run's counts, gather what Redis
// knows of the run (its invoices and outcomes, failures, times) and the export's rejects files, and
// have the outbox write the report for finance (src/outbox/run-report.ts).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { readRejectsFile } from '../export';
import {
  findSealed,
  writeRunReport,
  type RunReportFiles,
  type RunReportInvoice,
  type RunReportReject,
} from '../outbox';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import {
  readRun,
  readSettledFacts,
  runKey,
  scanFailures,
  scanSettledJobs,
  settledEntry,
  settledJobCount,
  type RunCounts,
  type RunFailure,
} from './run-record';
import { parseSealJobId } from './seal-job';
import { SettledOrder } from './settled-order';

export interface ReportRunOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  runId: string;
  /** the counts settleRun returned */
  counts: RunCounts;
  /** the run's job definition (its outbox and export folder); without it no report can be written */
  job: JobDefinition | undefined;
}

/** The rejects files the producer wrote for this run (`<export>.<run ID>.rejects.csv`), merged. */
async function runRejects(job: JobDefinition, runId: string): Promise<RunReportReject[]> {
  const dir = path.join(job.exportFolder, 'rejects');
  const suffix = `.${runId}.rejects.csv`;
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith(suffix));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: RunReportReject[] = [];
  for (const name of names) {
    const exportFile = name.slice(0, -suffix.length);
    for (const r of await readRejectsFile(path.join(dir, name))) out.push({ exportFile, ...r });
  }
  return out;
}

/** What the report needs of a failure (the list keeps more). */
type FailureNote = Pick<RunFailure, 'invoice' | 'line' | 'exportFile' | 'kind' | 'reason' | 'attempts'>;

/** Report rows made a chunk at a time (their facts read from Redis per chunk). */
const REPORT_CHUNK = 2000;

/**
 * The run's settled jobs in report order (compareReportOrder), each once: SCAN may hand a job over
 * twice, so the first is kept. A compact key per job (SettledOrder); the facts of failed invoices are
 * read, a chunk at a time, to order them exactly as their report rows will say (invoice, line).
 */
async function settledOrder(
  o: ReportRunOptions,
  failureOf: ReadonlyMap<string | undefined, FailureNote>,
): Promise<SettledOrder> {
  const order = new SettledOrder(await settledJobCount(o.redis, o.prefix, o.runId));
  const seen = new Set<string>();
  for await (const chunk of scanSettledJobs(o.redis, o.prefix, o.runId)) {
    const fresh = chunk.filter(([jobId]) => !seen.has(jobId) && seen.add(jobId));
    // A failed invoice's facts (any invoice's, in older runs) name its invoice and line first.
    const facts = await readSettledFacts(
      o.redis,
      o.prefix,
      o.runId,
      fresh.map(([jobId]) => jobId),
    );
    for (const [n, [jobId, value]] of fresh.entries()) {
      const entry = settledEntry(value, facts[n]);
      const ids = parseSealJobId(jobId);
      const failure = failureOf.get(jobId);
      const invoiceNumber = entry.invoice?.invoice ?? failure?.invoice ?? ids?.invoiceNumber;
      if (invoiceNumber === undefined) continue;
      const line = entry.invoice?.line ?? entry.line ?? failure?.line;
      order.add({
        jobId,
        invoiceNumber,
        ...(line !== undefined && { line }),
        ...(ids && { sourceSha256: ids.sourceSha256 }),
        ...(entry.outcome !== undefined && { outcome: entry.outcome }),
        ...(entry.exportFile !== undefined && { exportFile: entry.exportFile }),
      });
    }
  }
  seen.clear();
  order.sort();
  return order;
}

/** The report's invoices, a chunk at a time in report order. */
async function* reportInvoices(
  o: ReportRunOptions,
  job: JobDefinition,
  order: SettledOrder,
  failureOf: ReadonlyMap<string | undefined, FailureNote>,
): AsyncGenerator<RunReportInvoice[]> {
  for (let i = 0; i < order.length; i += REPORT_CHUNK) {
    const chunk = order.keys(i, i + REPORT_CHUNK);
    const facts = await readSettledFacts(
      o.redis,
      o.prefix,
      o.runId,
      chunk.map((k) => k.jobId),
    );
    const invoices: RunReportInvoice[] = [];
    for (const [n, k] of chunk.entries()) {
      const { outcome } = k;
      const invoice = facts[n];
      const failure = failureOf.get(k.jobId);
      let status: RunReportInvoice['status'];
      if (outcome !== undefined) {
        status = outcome === 'failed' ? 'failed' : outcome === 'sealed' ? 'sealed' : 'already sealed';
      } else if (failure) {
        status = 'failed';
      } else {
        // Settled before outcomes were kept: the sealed index says which run sealed it.
        const ids = parseSealJobId(k.jobId);
        const record =
          ids && (await findSealed(job.outboxRoot, job.tenant, ids.invoiceNumber, ids.sourceSha256));
        status = record?.runId === o.runId ? 'sealed' : 'already sealed';
      }
      // A sealed invoice's customer, amount, issue date, file and digest come from the sealed index and
      // the manifest row (writeRunReport looks them up): the run keeps only its outcome and export row.
      invoices.push({
        invoiceNumber: k.invoiceNumber,
        ...(k.sourceSha256 !== undefined && { sourceSha256: k.sourceSha256 }),
        status,
        customer: invoice?.customer,
        amount: invoice?.amount,
        issueDate: invoice?.issueDate,
        line: k.line,
        exportFile: invoice?.exportFile ?? k.exportFile ?? failure?.exportFile,
        file: invoice?.file,
        sealedSha256: invoice?.sealedSha256,
        ...(status === 'failed' &&
          failure && { failure: { kind: failure.kind, reason: failure.reason, attempts: failure.attempts } }),
      });
    }
    yield invoices;
  }
}

/**
 * Writes the settled run's report. Never throws: the invoices are sealed and counted whatever happens
 * here, and a job must not fail (or retry into a run that will not settle again) for its report; a
 * failure is logged with the run ID and leaves `reportedFor` unset, so the next worker that starts
 * writes it (reportUnreportedRuns), as does a re-settle after `sealer retry`.
 *
 * A chunk at a time, for runs of hundreds of thousands of invoices: the run's outcomes are scanned,
 * not read in one reply; only a short key per invoice (and the failures, by job ID) is held to put
 * them in order, and the report's rows are made and written a chunk at a time (writeRunReport).
 */
export async function reportSettledRun(o: ReportRunOptions): Promise<RunReportFiles | undefined> {
  try {
    if (!o.job) throw new Error('the run names no job definition this process has');
    const job = o.job;
    const run = await readRun(o.redis, o.prefix, o.runId);
    if (typeof run.runDate !== 'string') throw new Error('the run record has no run date');
    // By job ID, the last entry of a job winning (as the list is appended to); only what the report says.
    const failureOf = new Map<string | undefined, FailureNote>();
    for await (const chunk of scanFailures(o.redis, o.prefix, o.runId)) {
      for (const f of chunk) {
        failureOf.set(f.jobId, {
          invoice: f.invoice,
          line: f.line,
          reason: f.reason,
          ...(f.kind !== undefined && { kind: f.kind }),
          ...(f.attempts !== undefined && { attempts: f.attempts }),
          ...(f.exportFile !== undefined && { exportFile: f.exportFile }),
        });
      }
    }
    const order = await settledOrder(o, failureOf);
    const counts: Record<string, number> = {
      rows: o.counts.rows,
      enqueued: o.counts.enqueued,
      duplicates: o.counts.duplicates,
      rejected: o.counts.rejected,
      sealed: o.counts.sealed,
      alreadySealed: o.counts.alreadySealed,
      failed: o.counts.failed,
    };
    const endedAt = typeof run.settledAt === 'string' ? run.settledAt : new Date().toISOString();
    const files = await writeRunReport(job.outboxRoot, {
      runId: o.runId,
      job: typeof run.job === 'string' ? run.job : job.name,
      tenant: job.tenant,
      runDate: run.runDate,
      ...(typeof run.startedAt === 'string' && { startedAt: run.startedAt }),
      endedAt,
      ...(typeof run.level === 'string' && { level: run.level }),
      counts,
      invoices: reportInvoices(o, job, order, failureOf),
      rejects: await runRejects(job, o.runId),
    });
    if (order.length !== o.counts.sealed + o.counts.alreadySealed + o.counts.failed) {
      o.logger.warn(
        { runId: o.runId, listed: order.length, counts },
        'run report lists a different number of invoices than the run counts',
      );
    }
    // Which settlement the report describes: a worker starting finds runs whose latest settlement
    // has none (a crash between settling and writing) and writes it (reportUnreportedRuns).
    if (typeof run.settledAt === 'string') {
      await o.redis.hset(runKey(o.prefix, o.runId), 'reportedFor', run.settledAt);
    }
    o.logger.info({ runId: o.runId, report: files.dir }, 'run report written');
    return files;
  } catch (err) {
    o.logger.error({ runId: o.runId, err: (err as Error).message }, 'run report not written');
    return undefined;
  }
}

export interface UnreportedRunsOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  jobs: JobDefinition[];
  /** look at runs settled this recently (days); default 7 */
  sinceDays?: number;
  now?: Date;
}

/**
 * Writes the report of every run of `jobs` settled in the last `sinceDays` whose latest settlement has
 * no report: settleRun hands the counts to one caller once, so a process that died between settling a
 * run and writing its report leaves it to the next worker that starts. Returns the run IDs reported.
 * Never throws (see reportSettledRun).
 */
export async function reportUnreportedRuns(o: UnreportedRunsOptions): Promise<string[]> {
  const reported: string[] = [];
  try {
    const since = new Date((o.now ?? new Date()).getTime() - (o.sinceDays ?? 7) * 86_400_000).toISOString();
    for (const runId of await o.redis.smembers(`${o.prefix}:runs`)) {
      const run = await readRun(o.redis, o.prefix, runId);
      if (typeof run.settledAt !== 'string' || run.settledAt < since) continue;
      if (run.reportedFor === run.settledAt) continue;
      const job = o.jobs.find((j) => j.name === run.job);
      if (!job) continue;
      if (await reportSettledRun({ ...o, runId, counts: run, job })) reported.push(runId);
    }
  } catch (err) {
    o.logger.error({ err: (err as Error).message }, 'cannot look for runs without a report');
  }
  return reported;
}
