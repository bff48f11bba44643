// The demo seals under the sealer's own key prefix, so that `sealer runs`, `failed` and `retry` show
// its night afterwards. Starting afresh, it clears only what belongs to its own tenants and jobs (their
// queues, runs, approvals, locks), never the whole prefix: a production queue may share the Redis.
import type { Redis } from 'ioredis';
import { sealQueueName } from '../queue';

// A run ID is <job>-YYYYMMDD-HHMMSS-mmm (run-clock.ts): job fuji-nightly must not match fuji-nightly-eu.
function runIdMatcher(jobs: string[]): (id: string) => boolean {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^(${jobs.map(escape).join('|')})-\\d{8}-\\d{6}-\\d{3}$`);
  return (id) => jobs.length > 0 && pattern.test(id);
}

function belongs(rest: string, tenants: string[], jobs: string[], isRunId: (id: string) => boolean): boolean {
  // run:<run ID> and its run:<run ID>:settled, :failures, ... keys
  if (rest.startsWith('run:') && isRunId(rest.slice(4).split(':')[0]!)) return true;
  for (const j of jobs) {
    for (const kind of ['open-runs', 'producing', 'renewing']) if (rest === `${kind}:${j}`) return true;
  }
  // custody:lease:<url>:<tenant>:<credential> and custody:totp-step:… (URI-encoded parts, so the
  // tenant is the next-to-last part)
  const leaseTenant = /^custody:(lease|totp-step):/.test(rest) ? rest.split(':').at(-2) : undefined;
  for (const t of tenants) {
    if (rest.startsWith(`${sealQueueName(t)}:`)) return true;
    for (const kind of ['invoice-case', 'enqueue-lock']) if (rest === `${kind}:${t}`) return true;
    for (const kind of ['approval', 'approval-hashes', 'approval-pending'])
      if (rest.startsWith(`${kind}:${t}:`)) return true;
    if (leaseTenant === encodeURIComponent(t)) return true;
  }
  return false;
}

/** Deletes the demo tenants' and jobs' keys under `prefix`; returns how many went. */
export async function clearDemoState(
  redis: Redis,
  prefix: string,
  tenants: string[],
  jobs: string[],
): Promise<number> {
  const isRunId = runIdMatcher(jobs);
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const mine = keys.filter((k) => belongs(k.slice(prefix.length + 1), tenants, jobs, isRunId));
    if (mine.length) removed += await redis.unlink(...mine);
  } while (cursor !== '0');
  const runs = (await redis.smembers(`${prefix}:runs`)).filter(isRunId);
  if (runs.length) await redis.srem(`${prefix}:runs`, ...runs);
  // Latches are fields of one hash, each a JSON [providerUrl, tenant, credentialId].
  const latches = `${prefix}:custody:latches`;
  const fields = (await redis.hkeys(latches)).filter((f) => {
    try {
      return tenants.includes((JSON.parse(f) as unknown[])[1] as string);
    } catch {
      return false;
    }
  });
  if (fields.length) await redis.hdel(latches, ...fields);
  return removed + runs.length + fields.length;
}
