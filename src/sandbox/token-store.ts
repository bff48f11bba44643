// OAuth2 access tokens issued by the sandbox's client-credentials grant: opaque random strings bound
// to the OAuth client (and so to its tenant), with an expiry. In memory only; a restart logs clients out.
import { randomBytes } from 'node:crypto';
import { cscErrors } from './csc-errors';

const EXPIRED_MEMORY_MS = 3600_000;

export interface TokenGrant {
  clientId: string;
  tenant: string;
  expiresAt: number;
}

export class TokenStore {
  /** issued values, kept (bounded) after they lapse so tests can check none leaked */
  private readonly issued: string[] = [];
  private readonly tokens = new Map<string, TokenGrant>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  issuedValues(): string[] {
    return [...this.issued];
  }

  private remember(value: string): void {
    this.issued.push(value);
    if (this.issued.length > 10_000) this.issued.shift();
  }

  issue(clientId: string, tenant: string): { accessToken: string; expiresInSec: number } {
    this.sweep();
    const accessToken = randomBytes(32).toString('base64url');
    this.remember(accessToken);
    this.tokens.set(accessToken, { clientId, tenant, expiresAt: this.now() + this.lifetimeMs });
    return { accessToken, expiresInSec: Math.max(1, Math.ceil(this.lifetimeMs / 1000)) };
  }

  /** Resolves an `Authorization` header to its grant, or throws the CSC error a provider would send. */
  authenticate(authorization: string | undefined): TokenGrant {
    if (authorization === undefined || authorization.trim() === '') throw cscErrors.missingToken();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw cscErrors.malformedAuthHeader();
    const grant = this.tokens.get(match[1]);
    if (grant === undefined) throw cscErrors.invalidToken();
    if (this.now() >= grant.expiresAt) throw cscErrors.expiredToken();
    return grant;
  }

  // Expired tokens are kept for a while so a late caller hears "expired" rather than "not valid".
  private sweep(): void {
    const forgetBefore = this.now() - EXPIRED_MEMORY_MS;
    for (const [token, grant] of this.tokens) if (grant.expiresAt < forgetBefore) this.tokens.delete(token);
  }
}
