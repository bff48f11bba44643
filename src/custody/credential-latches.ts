// The latch that stops a credential for every worker process once the provider refused its factors
// (wrong PIN or OTP): kept in one Redis hash, read before every authorisation, and cleared by what can
// put it right: new factors (`sealer factors set` / rotate), a new approval (`sealer approve`), or ops
// retrying the failed invoices. It holds the provider's answer, never a factor.
import type { Redis } from 'ioredis';
import type { CredentialLatch } from '../csc';
import { latchesKey, latchField, refOfLatchField, type CredentialRef } from './credential-keys';

export type StoredLatch = CredentialLatch & CredentialRef;

export async function readLatch(
  redis: Redis,
  prefix: string,
  ref: CredentialRef,
): Promise<CredentialLatch | undefined> {
  const text = await redis.hget(latchesKey(prefix), latchField(ref));
  return text === null ? undefined : parseLatch(text);
}

export async function setLatch(
  redis: Redis,
  prefix: string,
  ref: CredentialRef,
  latch: CredentialLatch,
): Promise<void> {
  const stored: StoredLatch = { ...latch, ...ref };
  await redis.hset(latchesKey(prefix), latchField(ref), JSON.stringify(stored));
}

/** Every latched credential, for ops to see. */
export async function listCredentialLatches(redis: Redis, prefix: string): Promise<StoredLatch[]> {
  const all = await redis.hgetall(latchesKey(prefix));
  return Object.entries(all).flatMap(([field, text]) => {
    const ref = refOfLatchField(field);
    return ref ? [{ ...parseLatch(text), ...ref }] : [];
  });
}

/**
 * Lets every process authorise the credential again. Without `providerUrl`, clears the tenant's
 * credential at every provider (what `factors set` knows: the factors belong to tenant and credential).
 * Returns the latches cleared.
 */
export async function clearCredentialLatch(
  redis: Redis,
  prefix: string,
  which: { tenant: string; credentialId: string; providerUrl?: string },
): Promise<StoredLatch[]> {
  const key = latchesKey(prefix);
  const matching = (await listCredentialLatches(redis, prefix)).filter(
    (l) =>
      l.tenant === which.tenant &&
      l.credentialId === which.credentialId &&
      (which.providerUrl === undefined || l.providerUrl === which.providerUrl),
  );
  if (matching.length > 0) await redis.hdel(key, ...matching.map(latchField));
  return matching;
}

// An unreadable latch still stops the credential: better than sending factors that may be wrong.
const UNREADABLE: CredentialLatch = {
  reason: 'a latch this worker cannot read (set by another version?)',
  at: 0,
};

function parseLatch(text: string): CredentialLatch {
  try {
    const v = JSON.parse(text) as Partial<CredentialLatch>;
    if (typeof v.reason !== 'string' || typeof v.at !== 'number') return UNREADABLE;
    return {
      reason: v.reason,
      at: v.at,
      ...(typeof v.status === 'number' ? { status: v.status } : {}),
      ...(typeof v.error === 'string' ? { error: v.error } : {}),
      ...(typeof v.errorDescription === 'string' ? { errorDescription: v.errorDescription } : {}),
    };
  } catch {
    return UNREADABLE;
  }
}
