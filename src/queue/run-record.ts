// Run records in Redis: one hash per run with its counts, so any process can tell how a run stands.
// The counts must add up: enqueued = sealed + alreadySealed + failed + still waiting. An invoice's
// outcome is counted once however often its job runs (a crash or a lost completion re-runs it): the
// run keeps the set of job IDs already settled, and one script adds to the set and the count together.
import type { Redis } from 'ioredis';

export interface RunCounts {
  /** invoices waiting for a tenant's approval right now (not a final state) */
  awaitingApproval?: number;
  rows: number;
  enqueued: number;
  duplicates: number;
  rejected: number;
  sealed: number;
  alreadySealed: number;
  failed: number;
}

const FIELDS: (keyof RunCounts)[] = [
  'rows',
  'enqueued',
  'duplicates',
  'rejected',
  'sealed',
  'alreadySealed',
  'failed',
];

export function runKey(prefix: string, runId: string): string {
  return `${prefix}:run:${runId}`;
}

export async function addRunCounts(
  redis: Redis,
  prefix: string,
  runId: string,
  counts: Partial<RunCounts>,
  meta: Record<string, string> = {},
): Promise<void> {
  const multi = redis.multi();
  const key = runKey(prefix, runId);
  for (const [field, n] of Object.entries(counts)) if (n) multi.hincrby(key, field, n);
  if (Object.keys(meta).length) multi.hset(key, meta);
  if (meta.job !== undefined) multi.sadd(openRunsKey(prefix, meta.job), runId);
  multi.sadd(`${prefix}:runs`, runId);
  await multi.exec();
}

export type Outcome = 'sealed' | 'alreadySealed' | 'failed';

/** A failed invoice as the run lists it (and `sealer runs` / run reports show it). */
export interface RunFailure {
  invoice: string;
  line: number;
  reason: string;
  /** what kind of failure decided its fate: refused, transient (retries spent), unsealable, ... */
  kind?: string;
  jobId?: string;
  attempts?: number;
  exportFile?: string;
}

/**
 * What a run keeps of one settled invoice for its report: the job's facts from the export row and,
 * when sealed, the sealed file's digest. Kept per job ID beside the counts, so that the report lists
 * every invoice of the run (sealed, already sealed, failed) from Redis and the outbox alone.
 */
export interface SettledInvoice {
  invoice: string;
  line: number;
  exportFile?: string;
  customer?: string;
  amount?: number;
  issueDate?: string;
  /** the sealed file (absolute) and its digest, when the job returned them */
  file?: string;
  sealedSha256?: string;
}

// KEYS[1] run hash, KEYS[2] settled set, KEYS[3] failures list, KEYS[4] awaiting set,
// KEYS[5] outcome by job ID, KEYS[6] settled invoice (JSON) by job ID
// ARGV[1] job ID, ARGV[2] count field, ARGV[3] failure JSON ('' for none), ARGV[4] invoice JSON ('' for none)
// Returns 1 when counted now, 0 when this job was counted already.
const SETTLE_SCRIPT = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[6], ARGV[1], ARGV[4]) end
return 1`;

/**
 * Counts one invoice's outcome in its run, once: returns false (and counts nothing) when this job was
 * already counted, e.g. sealed before a crash and found sealed on the re-run.
 */
export async function recordOutcome(
  redis: Redis,
  prefix: string,
  runId: string,
  jobId: string,
  outcome: Outcome,
  failure?: RunFailure,
  invoice?: SettledInvoice,
): Promise<boolean> {
  const key = runKey(prefix, runId);
  const fresh = await redis.eval(
    SETTLE_SCRIPT,
    6,
    key,
    `${key}:settled`,
    `${key}:failures`,
    `${key}:awaiting`,
    `${key}:outcomes`,
    `${key}:invoices`,
    jobId,
    outcome,
    failure ? JSON.stringify(failure) : '',
    invoice ? JSON.stringify(invoice) : '',
  );
  return fresh === 1;
}

/** Every settled invoice of the run by job ID: its outcome and what was kept of it (the outcome is
 * absent for jobs settled before outcomes were kept; the invoice also for one `sealer retry` counted
 * as already sealed without its job in hand). */
export async function readSettledInvoices(
  redis: Redis,
  prefix: string,
  runId: string,
): Promise<Map<string, { outcome?: Outcome; invoice?: SettledInvoice }>> {
  const key = runKey(prefix, runId);
  const [outcomes, invoices, settled] = await Promise.all([
    redis.hgetall(`${key}:outcomes`),
    redis.hgetall(`${key}:invoices`),
    redis.smembers(`${key}:settled`),
  ]);
  const out = new Map<string, { outcome?: Outcome; invoice?: SettledInvoice }>();
  for (const jobId of settled) {
    const raw = invoices[jobId];
    const outcome = outcomes[jobId] as Outcome | undefined;
    out.set(jobId, {
      ...(outcome === undefined ? {} : { outcome }),
      ...(raw === undefined ? {} : { invoice: JSON.parse(raw) as SettledInvoice }),
    });
  }
  return out;
}

export async function readFailures(redis: Redis, prefix: string, runId: string): Promise<RunFailure[]> {
  const raw = await redis.lrange(`${runKey(prefix, runId)}:failures`, 0, -1);
  return raw.map((s) => JSON.parse(s) as RunFailure);
}

/**
 * Invoices still to settle in the given job's open runs (enqueued, not yet sealed or failed): what a
 * credential's next authorisation should cover. Runs settle and leave the open set.
 */
export async function pendingInvoices(redis: Redis, prefix: string, jobNames: string[]): Promise<number> {
  let pending = 0;
  for (const job of jobNames) {
    const runs = await redis.smembers(openRunsKey(prefix, job));
    for (const runId of runs) {
      const c = await readRun(redis, prefix, runId);
      if (c.settledAt !== undefined) continue;
      pending += Math.max(0, c.enqueued - c.sealed - c.alreadySealed - c.failed);
    }
  }
  return pending;
}

function openRunsKey(prefix: string, job: string): string {
  return `${prefix}:open-runs:${job}`;
}

export async function readRun(
  redis: Redis,
  prefix: string,
  runId: string,
): Promise<RunCounts & Record<string, unknown>> {
  const [raw, awaiting] = await Promise.all([
    redis.hgetall(runKey(prefix, runId)),
    redis.scard(`${runKey(prefix, runId)}:awaiting`),
  ]);
  const counts = Object.fromEntries(FIELDS.map((f) => [f, Number(raw[f] ?? 0)])) as unknown as RunCounts;
  return { ...raw, ...counts, awaitingApproval: awaiting };
}

export function runSettled(c: RunCounts): boolean {
  return c.sealed + c.alreadySealed + c.failed >= c.enqueued;
}

/**
 * Marks the run settled once every enqueued invoice is sealed, already sealed or failed, and the
 * producer has finished. Returns the counts to the one caller (in any process) that settled it.
 */
export async function settleRun(redis: Redis, prefix: string, runId: string): Promise<RunCounts | undefined> {
  const run = await readRun(redis, prefix, runId);
  if (run.state !== 'produced' || !runSettled(run)) return undefined;
  const first = await redis.hsetnx(runKey(prefix, runId), 'settledAt', new Date().toISOString());
  if (typeof run.job === 'string') await redis.srem(openRunsKey(prefix, run.job), runId);
  return first ? run : undefined;
}

/**
 * Adds (or removes) a job to the run's set of invoices awaiting approval; a set, so a job that looks
 * again and again is counted once. Returns true when the job was not already in the set.
 */
export async function markAwaiting(
  redis: Redis,
  prefix: string,
  runId: string,
  jobId: string,
  awaiting: boolean,
): Promise<boolean> {
  const key = `${runKey(prefix, runId)}:awaiting`;
  return (awaiting ? await redis.sadd(key, jobId) : await redis.srem(key, jobId)) === 1;
}

/** The most recent runs (by run ID, which starts with the job name and time), newest first. */
export async function listRuns(
  redis: Redis,
  prefix: string,
  limit = 20,
): Promise<{ runId: string; counts: RunCounts & Record<string, unknown> }[]> {
  const ids = await redis.smembers(`${prefix}:runs`);
  const withTime = await Promise.all(
    ids.map(async (runId) => ({
      runId,
      at: (await redis.hget(runKey(prefix, runId), 'startedAt')) ?? runId,
    })),
  );
  withTime.sort((a, b) => b.at.localeCompare(a.at));
  return Promise.all(
    withTime
      .slice(0, limit)
      .map(async ({ runId }) => ({ runId, counts: await readRun(redis, prefix, runId) })),
  );
}

// KEYS[1] run hash, KEYS[2] settled set, KEYS[3] failures list, KEYS[4] open runs of the run's job
// ARGV[1] job ID, ARGV[2] run ID
const REOPEN_SCRIPT = `
local found = false
for _, raw in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  local ok, f = pcall(cjson.decode, raw)
  if ok and f.jobId == ARGV[1] then
    found = true
    redis.call('LREM', KEYS[3], 0, raw)
  end
end
if not found then return 0 end
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'failed', -1) end
redis.call('HDEL', KEYS[1], 'settledAt')
if KEYS[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[2]) end
return 1`;

/**
 * Takes a failed invoice back out of its run's outcome, before its job is retried: the failed count
 * drops, its failures entry goes, and the run is open again, so that the retried job's outcome (sealed,
 * or failed again) is counted afresh by recordOutcome. Returns false when the job was not settled in
 * this run's failures (nothing changed: a sealed job is never taken back).
 */
export async function reopenFailure(
  redis: Redis,
  prefix: string,
  runId: string,
  jobId: string,
): Promise<boolean> {
  const key = runKey(prefix, runId);
  const job = await redis.hget(key, 'job');
  const reopened = await redis.eval(
    REOPEN_SCRIPT,
    4,
    key,
    `${key}:settled`,
    `${key}:failures`,
    job === null ? '' : openRunsKey(prefix, job),
    jobId,
    runId,
  );
  return reopened === 1;
}
