// Run records in Redis: one hash per run with its counts, so any process can tell how a run stands.
// The counts must add up: enqueued = sealed + alreadySealed + failed + still waiting. An invoice's
// outcome is counted once however often its job runs (a crash or a lost completion re-runs it): the
// run keeps each settled job ID's outcome (a few bytes: no job is kept in Redis once it completed), and
// one script records the outcome and adds to the count together.
import crypto from 'node:crypto';
import path from 'node:path';
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
 * What a run keeps of one settled invoice for its report. A sealed or already sealed invoice keeps only
 * its outcome and export row (line, export file's name) beside its job ID: the rest of what the report
 * says of it (customer, amount, issue date, sealed file and digest) is in the outbox's sealed index and
 * manifest, durable, so Redis does not carry it a second time for a million invoices. A failed invoice
 * is in no manifest: it keeps the job's facts from the export row.
 */
export interface SettledInvoice {
  invoice: string;
  line: number;
  exportFile?: string;
  customer?: string;
  amount?: number;
  issueDate?: string;
  /** the sealed file (absolute) and its digest, when the job returned them (not kept since runs keep
   * no more than the outbox cannot tell) */
  file?: string;
  sealedSha256?: string;
}

/**
 * The outcome hash's value: `<outcome>\t<line>\t<export file name>`, or the bare outcome (as runs kept
 * it before export rows were kept there). About 30 bytes beside the job ID.
 */
function outcomeValue(outcome: Outcome, invoice?: Pick<SettledInvoice, 'line' | 'exportFile'>): string {
  if (!invoice) return outcome;
  return `${outcome}\t${invoice.line}\t${invoice.exportFile === undefined ? '' : path.basename(invoice.exportFile)}`;
}

function parseOutcomeValue(value: string): { outcome: Outcome; line?: number; exportFile?: string } {
  const [outcome, line, ...name] = value.split('\t');
  const exportFile = name.join('\t');
  return {
    outcome: outcome as Outcome,
    ...(line === undefined || line === '' ? {} : { line: Number(line) }),
    ...(exportFile === '' ? {} : { exportFile }),
  };
}

// KEYS[1] run hash, KEYS[2] settled set (runs recorded before the outcome hash was the record),
// KEYS[3] failures list, KEYS[4] awaiting set, KEYS[5] outcome by job ID, KEYS[6] failed invoice (JSON)
// by job ID
// ARGV[1] job ID, ARGV[2] count field, ARGV[3] failure JSON ('' for none), ARGV[4] invoice JSON ('' for
// none), ARGV[5] outcome value (outcomeValue)
// Returns 1 when counted now, 0 when this job was counted already.
const SETTLE_SCRIPT = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[5]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[6], ARGV[1], ARGV[4]) end
return 1`;

/** One invoice's outcome, as recordOutcome and recordOutcomes take it. */
export interface OutcomeRecord {
  jobId: string;
  outcome: Outcome;
  failure?: RunFailure;
  invoice?: SettledInvoice;
}

function settleArgs(prefix: string, runId: string, r: OutcomeRecord): (string | number)[] {
  const key = runKey(prefix, runId);
  return [
    SETTLE_SCRIPT,
    6,
    key,
    `${key}:settled`,
    `${key}:failures`,
    `${key}:awaiting`,
    `${key}:outcomes`,
    `${key}:invoices`,
    r.jobId,
    r.outcome,
    r.failure ? JSON.stringify(r.failure) : '',
    // Only a failed invoice keeps its facts here; the others' are in the outbox (see SettledInvoice).
    r.invoice && r.outcome === 'failed' ? JSON.stringify(r.invoice) : '',
    outcomeValue(r.outcome, r.invoice),
  ];
}

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
  const [fresh] = await recordEachOutcome(redis, prefix, runId, [{ jobId, outcome, failure, invoice }]);
  if (fresh instanceof Error) throw fresh;
  return fresh === true;
}

/** recordOutcome for many invoices of one run in one round trip; returns how many were counted now. */
export async function recordOutcomes(
  redis: Redis,
  prefix: string,
  runId: string,
  records: OutcomeRecord[],
): Promise<number> {
  const results = await recordEachOutcome(redis, prefix, runId, records);
  const failed = results.find((r): r is Error => r instanceof Error);
  if (failed) throw failed;
  return results.filter((r) => r === true).length;
}

const SETTLE_SHA1 = crypto.createHash('sha1').update(SETTLE_SCRIPT).digest('hex');

/**
 * recordOutcome for many invoices of one run in one round trip, by the script's SHA-1 (the script's
 * text is sent again only when the server does not have it, e.g. after a restart); says per record
 * whether it was counted now, or the error that kept it from being recorded (that record alone).
 */
export async function recordEachOutcome(
  redis: Redis,
  prefix: string,
  runId: string,
  records: readonly OutcomeRecord[],
): Promise<(boolean | Error)[]> {
  if (records.length === 0) return [];
  const run = async (list: readonly OutcomeRecord[], bySha: boolean): Promise<[Error | null, unknown][]> => {
    const pipeline = redis.pipeline();
    for (const r of list) {
      const [, numKeys, ...rest] = settleArgs(prefix, runId, r);
      if (bySha) pipeline.evalsha(SETTLE_SHA1, numKeys as number, ...rest);
      else pipeline.eval(SETTLE_SCRIPT, numKeys as number, ...rest);
    }
    return (await pipeline.exec()) ?? [];
  };
  const results = await run(records, true);
  // A record refused with NOSCRIPT did not run: those are sent again with the script's text.
  const missing = results.flatMap(([err], i) => (err && /NOSCRIPT/.test(err.message) ? [i] : []));
  if (missing.length > 0) {
    const again = await run(
      missing.map((i) => records[i]!),
      false,
    );
    missing.forEach((i, k) => (results[i] = again[k]!));
  }
  return results.map(([err, value]) => err ?? value === 1);
}

/** What the run kept of one settled invoice (see SettledInvoice). */
export interface SettledEntry {
  /** absent for jobs settled before outcomes were kept */
  outcome?: Outcome;
  /** the export row, when kept */
  line?: number;
  exportFile?: string;
  /** a failed invoice's facts (and, in runs recorded before, any invoice's) */
  invoice?: SettledInvoice;
}

/** How many entries one SCAN of a run's records asks for (a round trip of a few hundred KB). */
export const SETTLED_SCAN_COUNT = 2000;

/**
 * The run's settled job IDs with their outcome values (undefined for a job only an older run's
 * settled set names), a chunk at a time: HSCAN of the outcome hash, then SSCAN of the settled set, so
 * that a run of a million invoices is never one reply. SCAN returns each job at least once and may
 * return one twice: a caller that needs each once keeps the first (the value never differs).
 */
export async function* scanSettledJobs(
  redis: Redis,
  prefix: string,
  runId: string,
  count = SETTLED_SCAN_COUNT,
): AsyncGenerator<[jobId: string, value: string | undefined][]> {
  const key = runKey(prefix, runId);
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(`${key}:outcomes`, cursor, 'COUNT', count);
    cursor = next;
    const chunk: [string, string | undefined][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) chunk.push([flat[i]!, flat[i + 1]!]);
    if (chunk.length > 0) yield chunk;
  } while (cursor !== '0');
  do {
    const [next, ids] = await redis.sscan(`${key}:settled`, cursor, 'COUNT', count);
    cursor = next;
    if (ids.length > 0) yield ids.map((id): [string, undefined] => [id, undefined]);
  } while (cursor !== '0');
}

/** About how many settled jobs the run has (outcomes kept, and the settled set of older runs). */
export async function settledJobCount(redis: Redis, prefix: string, runId: string): Promise<number> {
  const key = runKey(prefix, runId);
  const [outcomes, settled] = await Promise.all([
    redis.hlen(`${key}:outcomes`),
    redis.scard(`${key}:settled`),
  ]);
  return outcomes + settled;
}

/** The facts the run kept of these settled jobs (failed invoices, and any invoice of runs recorded
 * before), in their order; undefined where none were kept. One round trip. */
export async function readSettledFacts(
  redis: Redis,
  prefix: string,
  runId: string,
  jobIds: readonly string[],
): Promise<(SettledInvoice | undefined)[]> {
  if (jobIds.length === 0) return [];
  const raw = await redis.hmget(`${runKey(prefix, runId)}:invoices`, ...jobIds);
  return raw.map((r) => (r === null ? undefined : (JSON.parse(r) as SettledInvoice)));
}

/** What the run kept of one settled job, from its outcome value (scanSettledJobs) and its facts. */
export function settledEntry(value: string | undefined, invoice: SettledInvoice | undefined): SettledEntry {
  return {
    ...(value === undefined ? {} : parseOutcomeValue(value)),
    ...(invoice === undefined ? {} : { invoice }),
  };
}

/** The run's failures a chunk at a time (LRANGE), oldest first. */
export async function* scanFailures(
  redis: Redis,
  prefix: string,
  runId: string,
  count = SETTLED_SCAN_COUNT,
): AsyncGenerator<RunFailure[]> {
  const key = `${runKey(prefix, runId)}:failures`;
  for (let start = 0; ; start += count) {
    const raw = await redis.lrange(key, start, start + count - 1);
    if (raw.length > 0) yield raw.map((s) => JSON.parse(s) as RunFailure);
    if (raw.length < count) return;
  }
}

export async function readFailures(redis: Redis, prefix: string, runId: string): Promise<RunFailure[]> {
  const raw = await redis.lrange(`${runKey(prefix, runId)}:failures`, 0, -1);
  return raw.map((s) => JSON.parse(s) as RunFailure);
}

/**
 * Invoices still to settle in the given job's open runs (enqueued, not yet sealed or failed), and while
 * an export is being read the rows of it not read yet (see expectRows): what a credential's next
 * authorisation should cover. Runs settle and leave the open set.
 */
export async function pendingInvoices(redis: Redis, prefix: string, jobNames: string[]): Promise<number> {
  let pending = 0;
  for (const job of jobNames) {
    const runs = await redis.smembers(openRunsKey(prefix, job));
    for (const runId of runs) {
      const c = await readRun(redis, prefix, runId);
      if (c.settledAt !== undefined) continue;
      pending += Math.max(0, c.enqueued - c.sealed - c.alreadySealed - c.failed);
      const expecting = Number(c.expecting ?? 0);
      if (c.state === 'producing' && expecting > 0) {
        const read = c.enqueued + c.duplicates - Number(c.expectingFrom ?? 0);
        pending += Math.max(0, expecting - read);
      }
    }
  }
  return pending;
}

/**
 * The producer starts reading an export of about `rows` rows: until it is read, the rows not read yet
 * count as pending, so that the night's first authorisation covers the export rather than the first
 * chunk queued (a credential is authorised once per TOTP step: a SAD sized to one chunk idles the night
 * until the next step). 0 when the file is done.
 */
export async function expectRows(redis: Redis, prefix: string, runId: string, rows: number): Promise<void> {
  const key = runKey(prefix, runId);
  const [enqueued, duplicates] = await redis.hmget(key, 'enqueued', 'duplicates');
  await redis.hset(key, {
    expecting: String(Math.max(0, Math.floor(rows))),
    expectingFrom: String(Number(enqueued ?? 0) + Number(duplicates ?? 0)),
  });
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

// KEYS[1] run hash, KEYS[2] settled set (older runs), KEYS[3] failures list, KEYS[4] open runs of the
// run's job, KEYS[5] outcome by job ID, KEYS[6] failed invoice by job ID
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
local counted = redis.call('HDEL', KEYS[5], ARGV[1]) + redis.call('SREM', KEYS[2], ARGV[1])
if counted > 0 then redis.call('HINCRBY', KEYS[1], 'failed', -1) end
redis.call('HDEL', KEYS[6], ARGV[1])
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
    6,
    key,
    `${key}:settled`,
    `${key}:failures`,
    job === null ? '' : openRunsKey(prefix, job),
    `${key}:outcomes`,
    `${key}:invoices`,
    jobId,
    runId,
  );
  return reopened === 1;
}
