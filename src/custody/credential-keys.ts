// Where custody keeps a credential's cross-process state in Redis, under the worker's key prefix. A
// credential is named by provider URL + tenant + credential ID: one ID at two providers (or two tenants)
// is two credentials. Each part is URI-encoded so no part can run into the next.

export interface CredentialRef {
  /** The CSC base URL the credential is authorised at, e.g. `https://provider.example/csc/v2`. */
  providerUrl: string;
  tenant: string;
  credentialId: string;
}

function idOf(ref: CredentialRef): string {
  return [ref.providerUrl, ref.tenant, ref.credentialId].map(encodeURIComponent).join(':');
}

/** The authorisation lease: a string holding the holder's random token, with a TTL. */
export function leaseKey(prefix: string, ref: CredentialRef): string {
  return `${prefix}:custody:lease:${idOf(ref)}`;
}

/** The last TOTP time step used: a decimal integer string, with a TTL. */
export function totpStepKey(prefix: string, ref: CredentialRef): string {
  return `${prefix}:custody:totp-step:${idOf(ref)}`;
}

/** Authorised signatures each worker process holds: a hash (field: process token; value `count:expiresAtMs`). */
export function inHandKey(prefix: string, ref: CredentialRef): string {
  return `${prefix}:custody:in-hand:${idOf(ref)}`;
}

/** Every latched credential, in one hash (field: latchField(ref); value: JSON of StoredLatch). */
export function latchesKey(prefix: string): string {
  return `${prefix}:custody:latches`;
}

export function latchField(ref: CredentialRef): string {
  return JSON.stringify([ref.providerUrl, ref.tenant, ref.credentialId]);
}

/** The credential a latch field names, or undefined for a field this version did not write. */
export function refOfLatchField(field: string): CredentialRef | undefined {
  try {
    const v: unknown = JSON.parse(field);
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'string')) {
      const [providerUrl, tenant, credentialId] = v as [string, string, string];
      return { providerUrl, tenant, credentialId };
    }
  } catch {
    // not ours
  }
  return undefined;
}
