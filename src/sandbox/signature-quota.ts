// What SADs and credential-scope tokens share: a count of signatures, optionally bound to the hashes
// they may sign (SCAL2; each hash as many times as it was authorised).
import { cscErrors } from './csc-errors';

export interface SignatureQuota {
  remaining: number;
  /** hex digest -> signatures of it still authorised; undefined = not bound to hashes. */
  boundHashes?: Map<string, number>;
}

/** The hashes an authorisation binds, counted per digest; undefined when it binds none. */
export function countHashes(hashes: readonly Buffer[] | undefined): Map<string, number> | undefined {
  if (hashes === undefined) return undefined;
  const counts = new Map<string, number>();
  for (const h of hashes) {
    const key = h.toString('hex');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Spends one signature per hash, or throws without spending anything: more hashes than are left, or
 * (when bound) a hash not authorised. `holder` names what carries the quota in the message.
 */
export function spendQuota(quota: SignatureQuota, hashes: readonly Buffer[], holder: string): void {
  if (hashes.length > quota.remaining) {
    throw cscErrors.invalidParam(
      'hashes',
      `${hashes.length} hashes exceed the ${quota.remaining} signatures left on ${holder}`,
    );
  }
  let nextBound: Map<string, number> | undefined;
  if (quota.boundHashes !== undefined) {
    const bound = new Map(quota.boundHashes);
    hashes.forEach((h, i) => {
      const key = h.toString('hex');
      const left = bound.get(key) ?? 0;
      if (left === 0) throw cscErrors.hashNotAuthorized(i);
      bound.set(key, left - 1);
    });
    nextBound = bound;
  }
  quota.remaining -= hashes.length;
  if (nextBound !== undefined) quota.boundHashes = nextBound;
}
