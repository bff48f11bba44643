// The demo seals under the sealer's own key prefix, so that `sealer runs`, `failed` and `retry` show
// its night afterwards. Starting afresh, it clears only what belongs to its own tenants and jobs (their
// queues, runs, approvals, locks), never the whole prefix: a production queue may share the Redis.
import type { Redis } from 'ioredis';
import { sealQueueName } from '../queue';

// A run ID is <job>-YYYYMMDD-HHMMSS-mmm (run-clock.ts): job fuji-nightly must not match fuji-nightly-eu.
const RUN_SUFFIX = '-\\d{8}-\\d{6}-\\d{3}';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function belongs(key: string, prefix: string, tenants: string[], jobs: string[]): boolean {
  const rest = key.slice(prefix.length + 1);
  for (const t of tenants) {
    if (rest.startsWith(`${sealQueueName(t)}:`)) return true;
    for (const kind of ['invoice-case', 'enqueue-lock']) if (rest === `${kind}:${t}`) return true;
    for (const kind of ['approval', 'approval-hashes', 'approval-pending'])
      if (rest.startsWith(`${kind}:${t}:`)) return true;
    // custody:lease:<url>:<tenant>:<credential> and custody:totp-step:… (URI-encoded parts, so the
    // tenant is the next-to-last part)
    const parts = rest.split(':');
    if (/^custody:(lease|totp-step):/.test(rest) && parts.at(-2) === encodeURIComponent(t)) return true;
  }
  for (const j of jobs) {
    if (new RegExp(`^run:${escape(j)}${RUN_SUFFIX}(:|$)`).test(rest)) return true;
    for (const kind of ['open-runs', 'producing', 'renewing']) if (rest === `${kind}:${j}`) return true;
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
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const mine = keys.filter((k) => belongs(k, prefix, tenants, jobs));
    if (mine.length) removed += await redis.unlink(...mine);
  } while (cursor !== '0');
  const runs = (await redis.smembers(`${prefix}:runs`)).filter((r) =>
    jobs.some((j) => new RegExp(`^${escape(j)}${RUN_SUFFIX}$`).test(r)),
  );
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
