// Authorization codes of the authorization code flow (RFC 6749 section 4.1) and the approval requests
// waiting on the provider's page. A code is short-lived, single-use, bound to the client, to the
// redirect_uri it was sent to and to the PKCE code_challenge of its request (RFC 7636: only the holder of
// the matching code_verifier can redeem it); presenting one twice revokes the token it bought (section
// 4.1.2). In memory.
import { createHash, randomBytes } from 'node:crypto';
import { sameSecret } from './constant-time';
import { CscProtocolError } from './csc-errors';

/** What an approver approved: one credential, a number of signatures, under SCAL2 the hashes. */
export interface CredentialApproval {
  clientId: string;
  tenant: string;
  redirectUri: string;
  state?: string;
  credentialId: string;
  numSignatures: number;
  hashes?: Buffer[];
  /** RFC 7636 S256 code_challenge of the authorization request (the only method accepted). */
  codeChallenge: string;
  /** who approved, as they named themselves on the page (reported in the token answer's id_token) */
  approver?: string;
}

interface CodeEntry {
  approval: CredentialApproval;
  expiresAt: number;
  /** The access token bought with this code, once redeemed. */
  redeemedFor?: string;
}

const CODE_LIFETIME_MS = 60_000;
const PENDING_LIFETIME_MS = 10 * 60_000;

const invalidGrant = (description: string) => new CscProtocolError(400, 'invalid_grant', description);

/** RFC 7636 section 4.1: 43 to 128 characters of [A-Za-z0-9-._~]. */
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
function s256(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

export class AuthorizationCodeStore {
  /** issued values, kept (bounded) so tests can check none leaked */
  private readonly issued: string[] = [];
  private readonly codes = new Map<string, CodeEntry>();

  constructor(
    private readonly lifetimeMs = CODE_LIFETIME_MS,
    private readonly now: () => number = Date.now,
  ) {}

  issuedValues(): string[] {
    return [...this.issued];
  }

  issue(approval: CredentialApproval): string {
    this.sweep();
    const code = randomBytes(32).toString('base64url');
    this.issued.push(code);
    if (this.issued.length > 10_000) this.issued.shift();
    this.codes.set(code, { approval, expiresAt: this.now() + this.lifetimeMs });
    return code;
  }

  /**
   * Redeems `code` for the client, redirect_uri and PKCE code_verifier presented at the token endpoint,
   * or throws invalid_grant. `reused` is called with the token of an already redeemed code, so it can be
   * revoked. A missing or wrong verifier does not use the code up: without the verifier nobody can
   * redeem it, and its rightful client still can.
   */
  redeem(
    code: string,
    by: { clientId: string; redirectUri: string; codeVerifier?: string },
    reused: (token: string) => void,
  ): { approval: CredentialApproval; bind: (token: string) => void } {
    const entry = this.codes.get(code);
    if (entry === undefined || entry.approval.clientId !== by.clientId) {
      throw invalidGrant('The authorization code is not valid');
    }
    if (entry.redeemedFor !== undefined) {
      reused(entry.redeemedFor);
      throw invalidGrant('The authorization code was already used; the token issued for it is revoked');
    }
    if (this.now() >= entry.expiresAt) throw invalidGrant('The authorization code has expired');
    if (entry.approval.redirectUri !== by.redirectUri) {
      throw invalidGrant('Invalid parameter redirect_uri: it differs from the authorization request');
    }
    // RFC 7636 section 4.6: the server compares S256(code_verifier) with the code_challenge, and a
    // mismatch is invalid_grant; a code issued with a challenge and redeemed without a verifier is too.
    if (by.codeVerifier === undefined || by.codeVerifier === '') {
      throw invalidGrant(
        'Missing parameter code_verifier: the authorization request carried a PKCE code_challenge',
      );
    }
    if (
      !PKCE_VERIFIER.test(by.codeVerifier) ||
      !sameSecret(s256(by.codeVerifier), entry.approval.codeChallenge)
    ) {
      throw invalidGrant('The code_verifier does not match the code_challenge of the authorization request');
    }
    entry.redeemedFor = '';
    return {
      approval: entry.approval,
      bind: (token) => {
        entry.redeemedFor = token;
      },
    };
  }

  private sweep(): void {
    // Redeemed codes are kept a while past expiry so a replay still revokes the token.
    const forgetBefore = this.now() - PENDING_LIFETIME_MS;
    for (const [code, entry] of this.codes) if (entry.expiresAt < forgetBefore) this.codes.delete(code);
  }
}

/** Approval requests shown on the page and waiting for the approver's PIN and OTP, by a random id. */
export class PendingApprovals {
  private readonly pending = new Map<string, { approval: CredentialApproval; expiresAt: number }>();

  constructor(
    private readonly lifetimeMs = PENDING_LIFETIME_MS,
    private readonly now: () => number = Date.now,
  ) {}

  add(approval: CredentialApproval): string {
    const now = this.now();
    for (const [id, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(id);
    const id = randomBytes(24).toString('base64url');
    this.pending.set(id, { approval, expiresAt: now + this.lifetimeMs });
    return id;
  }

  get(id: string): CredentialApproval | undefined {
    const p = this.pending.get(id);
    if (p === undefined || p.expiresAt <= this.now()) return undefined;
    return p.approval;
  }

  delete(id: string): void {
    this.pending.delete(id);
  }
}
