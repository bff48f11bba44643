// Service access tokens: those issued by the client-credentials grant and by auth/login (opaque random
// strings bound to the tenant's OAuth client, with an expiry; in memory only, so a restart logs clients
// out), and each tenant's static API token from dataDir (never expires, survives restarts).
import { createHash, randomBytes } from 'node:crypto';
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
  /** Static tokens by SHA-256, so looking one up compares digests rather than the secrets themselves. */
  private readonly staticTokens = new Map<string, Omit<TokenGrant, 'expiresAt'>>();

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

  /** Accept `token` as a Bearer token of the client (and tenant) until the sandbox stops. */
  allowStatic(token: string, clientId: string, tenant: string): void {
    this.staticTokens.set(digest(token), { clientId, tenant });
  }

  /** Resolves an `Authorization` header to its grant, or throws the CSC error a provider would send. */
  authenticate(authorization: string | undefined): TokenGrant {
    if (authorization === undefined || authorization.trim() === '') throw cscErrors.missingToken();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw cscErrors.malformedAuthHeader();
    const grant = this.tokens.get(match[1]);
    if (grant === undefined) {
      const fixed = this.staticTokens.get(digest(match[1]));
      if (fixed !== undefined) return { ...fixed, expiresAt: Number.POSITIVE_INFINITY };
      throw cscErrors.invalidToken();
    }
    if (this.now() >= grant.expiresAt) throw cscErrors.expiredToken();
    return grant;
  }

  // Expired tokens are kept for a while so a late caller hears "expired" rather than "not valid".
  private sweep(): void {
    const forgetBefore = this.now() - EXPIRED_MEMORY_MS;
    for (const [token, grant] of this.tokens) if (grant.expiresAt < forgetBefore) this.tokens.delete(token);
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
