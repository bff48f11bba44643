// Credential-scope access tokens (CSC API v2, oauth2/token after an authorization code flow with
// scope "credential"): opaque random strings that stand in for a SAD. Each is bound to the OAuth client
// (so its tenant), one credential, a count of signatures, an expiry and, when hashes were approved
// (always under SCAL2), the multiset of those hashes. signatures/signHash accepts one as its Bearer
// token with no SAD; `spend` checks everything before it consumes anything. In memory only.
import { randomBytes } from 'node:crypto';
import { CscProtocolError, cscErrors } from './csc-errors';
import { countHashes, spendQuota } from './signature-quota';

// Spent, expired and revoked tokens are remembered this long so callers get a precise refusal.
const TOMBSTONE_MS = 3600_000;

export interface CredentialTokenGrant {
  clientId: string;
  tenant: string;
  credentialId: string;
  total: number;
  remaining: number;
  expiresAt: number;
  /** hex digest -> signatures of it still authorised; undefined = not bound to hashes. */
  boundHashes?: Map<string, number>;
  /** Set when the authorization code it came from was presented again (RFC 6749 section 4.1.2). */
  revoked: boolean;
}

export interface CredentialTokenRequest {
  clientId: string;
  tenant: string;
  credentialId: string;
  numSignatures: number;
  hashes?: Buffer[];
}

export class CredentialTokenStore {
  /** issued values, kept (bounded) after they lapse so tests can check none leaked */
  private readonly issued: string[] = [];
  private readonly grants = new Map<string, CredentialTokenGrant>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  issuedValues(): string[] {
    return [...this.issued];
  }

  issue(req: CredentialTokenRequest): { accessToken: string; expiresInSec: number } {
    this.sweep();
    const boundHashes = countHashes(req.hashes);
    const accessToken = randomBytes(32).toString('base64url');
    this.issued.push(accessToken);
    if (this.issued.length > 10_000) this.issued.shift();
    this.grants.set(accessToken, {
      clientId: req.clientId,
      tenant: req.tenant,
      credentialId: req.credentialId,
      total: req.numSignatures,
      remaining: req.numSignatures,
      expiresAt: this.now() + this.lifetimeMs,
      boundHashes,
      revoked: false,
    });
    return { accessToken, expiresInSec: Math.max(1, Math.ceil(this.lifetimeMs / 1000)) };
  }

  /**
   * The grant behind a credential-scope token; undefined when `token` is not one (it may be a service
   * token). An expired or revoked one is refused here, as RFC 6750 asks for any unusable Bearer token.
   */
  lookup(token: string): CredentialTokenGrant | undefined {
    const grant = this.grants.get(token);
    if (grant === undefined) return undefined;
    if (grant.revoked) throw cscErrors.invalidToken();
    if (this.now() >= grant.expiresAt) throw cscErrors.expiredToken();
    return grant;
  }

  revoke(token: string): void {
    const grant = this.grants.get(token);
    if (grant !== undefined) grant.revoked = true;
  }

  /** Whether `value` is a credential-scope token this store issued (usable or not). */
  knows(value: string): boolean {
    return this.grants.has(value);
  }

  /**
   * Authorises signing `hashes` with the token and spends them, or throws without spending anything.
   * `asSad`: the token came in the SAD parameter (with a service token as Bearer), so refusals are
   * the SAD's, not Bearer-token 401s that would make a client drop its good service token.
   */
  spend(
    token: string,
    use: { credentialId: string; clientId: string; hashes: Buffer[] },
    { asSad = false }: { asSad?: boolean } = {},
  ): void {
    let grant: CredentialTokenGrant | undefined;
    try {
      grant = this.lookup(token);
    } catch (err) {
      if (!asSad) throw err;
      const expired = err instanceof CscProtocolError && err.error === 'expired_token';
      throw expired ? cscErrors.sadExpired() : cscErrors.invalidParam('SAD');
    }
    if (grant === undefined || grant.clientId !== use.clientId) {
      throw asSad ? cscErrors.invalidParam('SAD') : cscErrors.invalidToken();
    }
    if (grant.credentialId !== use.credentialId) {
      throw cscErrors.invalidParam(
        'credentialID',
        'the credential-scope access token was not issued for this credential',
      );
    }
    if (grant.remaining === 0) {
      const description = `All ${grant.total} signatures authorised by the credential-scope access token have been used`;
      if (asSad) throw cscErrors.invalidParam('SAD', description);
      // Used up, the token authorises nothing more: for RFC 6750 that is an invalid token.
      throw new CscProtocolError(401, 'invalid_token', description, {
        'WWW-Authenticate': 'Bearer realm="csc", error="invalid_token"',
      });
    }
    spendQuota(grant, use.hashes, 'the access token');
  }

  private sweep(): void {
    const forgetBefore = this.now() - TOMBSTONE_MS;
    for (const [token, grant] of this.grants) if (grant.expiresAt < forgetBefore) this.grants.delete(token);
  }
}
