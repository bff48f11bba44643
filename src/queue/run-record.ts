// Run records in Redis: one hash per run with its counts, so any process can tell how a run stands.
// The counts must add up: enqueued = sealed + alreadySealed + failed + still waiting.
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
  multi.sadd(`${prefix}:runs`, runId);
  await multi.exec();
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
