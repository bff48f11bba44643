// The ops verbs' back end (`sealer runs`, `run`, `failed`, `retry`): plain data from the run records
// and the seal queue, so the CLI only prints. Retry re-queues a failed job under its own ID with its
// attempts reset, after taking it back out of its run's failed count; an invoice the tenant's sealed
// index lists is reported as already sealed and never queued again.
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import { findSealed } from '../outbox';
import { SealerError } from '../common/errors';
import { clearCredentialLatch } from '../custody';
import { parseSealJobId } from './seal-job';
import type { SealQueues } from './seal-queue';
import { reportSettledRun } from './report-run';
import { createLogger, type Logger } from '../common/logger';
import {
  listRuns,
  readFailures,
  readRun,
  recordOutcome,
  reopenFailure,
  runKey,
  settleRun,
  type RunCounts,
} from './run-record';

export interface RunSummary {
  runId: string;
  job?: string;
  tenant?: string;
  /** producing, sealing (produced, not every invoice settled) or settled */
  state: string;
  level?: string;
  startedAt?: string;
  /** when the last invoice settled */
  endedAt?: string;
  durationSec?: number;
  counts: {
    queued: number;
    sealed: number;
    alreadySealed: number;
    failed: number;
    rejected: number;
    duplicates: number;
    rows: number;
    awaitingApproval: number;
    /** queued, not yet sealed, already sealed or failed */
    pending: number;
  };
  /** provider calls the run took part in (a signHash batch may serve several runs: each counts it) */
  calls: { signHash: number; authorize: number; signatures: number };
}

export interface RunDetail extends RunSummary {
  failures: FailedInvoice[];
  /** export files that failed as a whole, with the error */
  fileErrors: { file: string; error: string }[];
  /** export files left for the next run, with the reason */
  notReady: { file: string; reason: string }[];
}

export interface FailedInvoice {
  runId: string;
  tenant?: string;
  job?: string;
  invoice: string;
  kind?: string;
  reason: string;
  attempts?: number;
  jobId?: string;
  exportFile?: string;
  line: number;
}

function summarise(runId: string, c: RunCounts & Record<string, unknown>): RunSummary {
  const str = (k: string) => (typeof c[k] === 'string' ? (c[k] as string) : undefined);
  const startedAt = str('startedAt');
  const endedAt = str('settledAt');
  const state = endedAt ? 'settled' : c.state === 'produced' ? 'sealing' : (str('state') ?? 'producing');
  const settled = c.sealed + c.alreadySealed + c.failed;
  return {
    runId,
    job: str('job'),
    tenant: str('tenant'),
    state,
    level: str('level'),
    startedAt,
    endedAt,
    durationSec: startedAt && endedAt ? (Date.parse(endedAt) - Date.parse(startedAt)) / 1000 : undefined,
    counts: {
      queued: c.enqueued,
      sealed: c.sealed,
      alreadySealed: c.alreadySealed,
      failed: c.failed,
      rejected: c.rejected,
      duplicates: c.duplicates,
      rows: c.rows,
      awaitingApproval: c.awaitingApproval ?? 0,
      pending: Math.max(0, c.enqueued - settled),
    },
    calls: {
      signHash: Number(c.signHashCalls ?? 0),
      authorize: Number(c.authorizeCalls ?? 0),
      signatures: Number(c.signHashHashes ?? 0),
    },
  };
}

/** The most recent runs, newest first, optionally one tenant's. */
export async function listRunSummaries(
  redis: Redis,
  prefix: string,
  opts: { tenant?: string; limit?: number } = {},
): Promise<RunSummary[]> {
  const runs = await listRuns(redis, prefix, Infinity);
  return runs
    .map((r) => summarise(r.runId, r.counts))
    .filter((r) => opts.tenant === undefined || r.tenant === opts.tenant)
    .slice(0, opts.limit ?? 20);
}

/** One run with its failures and file-level problems; undefined when no such run is recorded. */
export async function readRunDetail(
  redis: Redis,
  prefix: string,
  runId: string,
): Promise<RunDetail | undefined> {
  if ((await redis.exists(runKey(prefix, runId))) === 0) return undefined;
  const c = await readRun(redis, prefix, runId);
  const summary = summarise(runId, c);
  const fileErrors: RunDetail['fileErrors'] = [];
  const notReady: RunDetail['notReady'] = [];
  for (const [k, v] of Object.entries(c)) {
    if (typeof v !== 'string') continue;
    if (k.startsWith('error:')) fileErrors.push({ file: k.slice(6), error: v });
    if (k.startsWith('notReady:')) notReady.push({ file: k.slice(9), reason: v });
  }
  return { ...summary, failures: await failuresOf(redis, prefix, summary), fileErrors, notReady };
}

async function failuresOf(redis: Redis, prefix: string, run: RunSummary): Promise<FailedInvoice[]> {
  return (await readFailures(redis, prefix, run.runId)).map((f) => ({
    runId: run.runId,
    tenant: run.tenant,
    job: run.job,
    invoice: f.invoice,
    kind: f.kind,
    reason: f.reason,
    attempts: f.attempts,
    jobId: f.jobId,
    exportFile: f.exportFile,
    line: f.line,
  }));
}

/**
 * Failed invoices as their runs list them (a retried invoice leaves the list), oldest run last; one
 * run's with `runId`, one tenant's with `tenant`. Throws when `runId` names no recorded run.
 */
export async function listFailed(
  redis: Redis,
  prefix: string,
  opts: { runId?: string; tenant?: string } = {},
): Promise<FailedInvoice[]> {
  let runs: RunSummary[];
  if (opts.runId !== undefined) {
    const one = await readRunDetail(redis, prefix, opts.runId);
    if (!one) throw new UnknownRunError(`no run ${opts.runId} is recorded`);
    runs = [one];
  } else {
    runs = await listRunSummaries(redis, prefix, { limit: Infinity });
  }
  const out: FailedInvoice[] = [];
  for (const run of runs) {
    if (opts.tenant !== undefined && run.tenant !== opts.tenant) continue;
    out.push(...(await failuresOf(redis, prefix, run)));
  }
  return out;
}

/** `--run` named a run that no run record has (mistyped, or expired with its keys). */
export class UnknownRunError extends SealerError {}

export type RetryTarget =
  { jobIds: string[] } | { runId: string; tenant?: string } | { allFailed: true; tenant?: string };

export interface RetryItem {
  jobId: string;
  tenant: string;
  invoice: string;
  runId?: string;
}

export interface RetryResult {
  requeued: RetryItem[];
  /** sealed since it failed (the sealed index names the file): not queued again */
  alreadySealed: (RetryItem & { file: string })[];
  /** the job is not failed now (waiting, active, delayed): left as it is. A completed job is not in
   * Redis (removed on completion): it is found in the sealed index and reported as already sealed. */
  notFailed: (RetryItem & { state: string })[];
  /** no such job in the queue and no sealed record of it (never queued, or a failed job its queue's
   * bound pruned: a re-run of its export queues it again) */
  unknown: string[];
}

export interface RetryOptions {
  redis: Redis;
  prefix: string;
  queue: SealQueues;
  /** the job definitions: where each tenant's sealed index lives */
  jobs: JobDefinition[];
  /** for the run reports a retry rewrites; default: warnings and errors to stderr */
  logger?: Logger;
}

export async function retryJobs(opts: RetryOptions, target: RetryTarget): Promise<RetryResult> {
  const { redis, prefix, queue, jobs } = opts;
  // Which runs list each job as failed: an invoice sealed since is taken out of their failed counts.
  const listedIn = new Map<string, Set<string>>();
  /** what the runs' failures lists say of each job: its export row, when the job itself is gone */
  const listed = new Map<string, FailedInvoice>();
  if ('jobIds' in target) {
    for (const id of target.jobIds) listedIn.set(id, new Set());
  } else {
    const failed = await listFailed(redis, prefix, {
      runId: 'runId' in target ? target.runId : undefined,
      tenant: target.tenant,
    });
    for (const f of failed) {
      if (f.jobId === undefined) continue;
      listed.set(f.jobId, f);
      const runs = listedIn.get(f.jobId) ?? new Set<string>();
      listedIn.set(f.jobId, runs.add(f.runId));
    }
  }
  const result: RetryResult = { requeued: [], alreadySealed: [], notFailed: [], unknown: [] };
  for (const [jobId, runs] of listedIn) {
    const job = await queue.getJob(jobId);
    const data = job?.data ?? parseSealJobId(jobId);
    if (!data) {
      result.unknown.push(jobId);
      continue;
    }
    const runId = job?.data.runId;
    const item: RetryItem = { jobId, tenant: data.tenant, invoice: data.invoiceNumber, runId };
    const def =
      jobs.find((j) => job !== undefined && j.name === job.data.jobName) ??
      jobs.find((j) => j.tenant === data.tenant);
    const sealed = def
      ? await findSealed(def.outboxRoot, data.tenant, data.invoiceNumber, data.sourceSha256)
      : undefined;
    if (sealed) {
      // Counted as already sealed from now on, not as failed, in every run that lists it failed (its
      // own and, when a re-run of the export queued it again, the earlier one).
      for (const r of runId === undefined ? runs : new Set([...runs, runId])) {
        if (await reopenFailure(redis, prefix, r, jobId)) {
          // The export row from the job, or (a failed job pruned by its queue's bound) from the
          // failures list; the rest the report reads from the sealed index and the manifest.
          const row = listed.get(jobId);
          await recordOutcome(redis, prefix, r, jobId, 'alreadySealed', undefined, {
            invoice: data.invoiceNumber,
            line: job?.data.line ?? row?.line ?? 0,
            exportFile: job?.data.exportFile ?? row?.exportFile,
            file: sealed.file,
          });
          const settled = await settleRun(redis, prefix, r);
          if (settled)
            await reportSettledRun({
              redis,
              prefix,
              logger: opts.logger ?? createLogger({ level: 'warn' }),
              runId: r,
              counts: settled,
              job: def,
            });
        }
      }
      result.alreadySealed.push({ ...item, file: sealed.file });
      continue;
    }
    if (!job) {
      result.unknown.push(jobId);
      continue;
    }
    const state = await job.getState();
    if (state !== 'failed') {
      result.notFailed.push({ ...item, state });
      continue;
    }
    // Out of the failed count first: were the job retried first, it could seal before the reopen and
    // find its ID still settled, leaving the run saying failed.
    await reopenFailure(redis, prefix, job.data.runId, jobId);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    if (def) {
      // A refused factor latched the credential; ops retrying its invoices releases it, as a re-run does.
      await clearCredentialLatch(redis, prefix, {
        tenant: def.tenant,
        credentialId: def.signing.credentialId,
      });
    }
    result.requeued.push(item);
  }
  return result;
}
