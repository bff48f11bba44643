// The demo seals under the sealer's own key prefix, so that `sealer runs`, `failed` and `retry` show
// its night afterwards. Starting afresh, it clears only what belongs to its own tenants and jobs (their
// queues, runs, approvals, locks), never the whole prefix: a production queue may share the Redis.
import type { Redis } from 'ioredis';
import { sealQueueName } from '../queue';

function belongs(key: string, prefix: string, tenants: string[], jobs: string[]): boolean {
  const rest = key.slice(prefix.length + 1);
  for (const t of tenants) {
    if (rest.startsWith(`${sealQueueName(t)}:`)) return true;
    for (const kind of ['invoice-case', 'enqueue-lock']) if (rest === `${kind}:${t}`) return true;
    for (const kind of ['approval', 'approval-hashes', 'approval-pending'])
      if (rest.startsWith(`${kind}:${t}:`)) return true;
    // custody:lease:<url>:<tenant>:<credential> and custody:totp-step:… (URI-encoded parts)
    if (/^custody:(lease|totp-step):/.test(rest) && rest.split(':').includes(encodeURIComponent(t)))
      return true;
  }
  for (const j of jobs) {
    if (rest.startsWith(`run:${j}-`)) return true;
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
    jobs.some((j) => r.startsWith(`${j}-`)),
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
