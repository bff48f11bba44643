// What every sandbox route handler receives: the loaded state, the token / SAD / lock stores, the
// resolved options and the counters. Also the tenant-scoped credential lookup all CSC routes share, and
// the Bearer check that lets signatures/signHash take a credential-scope token instead of a SAD, and the
// store of online OTPs (codes credentials/sendOTP made and "sent" to the approver's phone, a file).
import { randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { writeFileReplacingSync } from '../outbox/atomic-write';
import { sameSecret } from './constant-time';
import { cscErrors } from './csc-errors';
import type { EcdsaSignatureFormat } from './hash-signer';
import type { Params } from './http-io';
import type { AuthorizationCodeStore, PendingApprovals } from './code-store';
import type { CredentialLock } from './credential-lock';
import type { CredentialTokenStore } from './credential-token-store';
import type { FaultInjector } from './fault-injector';
import type { PkiMaterial } from './pki-material';
import type { LoadedCredential, SandboxState } from './provisioning';
import type { SadStore } from './sad-store';
import { SandboxError } from './sandbox-error';
import type { TokenGrant, TokenStore } from './token-store';
import type { TotpVerifier } from './totp-verifier';
import type { SandboxStats, SignaturesFaultRule } from './types';

export interface SandboxContext {
  state: SandboxState;
  tokens: TokenStore;
  sads: SadStore;
  /** Authorization codes of the credential approval page, and the requests it shows. */
  codes: AuthorizationCodeStore;
  approvals: PendingApprovals;
  /** Credential-scope access tokens (they stand in for a SAD at signatures/signHash). */
  credentialTokens: CredentialTokenStore;
  lock: CredentialLock;
  /** TOTP checks and the last accepted time step per credential. */
  totp: TotpVerifier;
  /** Credentials whose OTP is online (sent by credentials/sendOTP), and the codes sent. */
  onlineOtp: OnlineOtpStore;
  stats: SandboxStats;
  /** Fault injection: the rules in force, the draws, the counts. */
  faults: FaultInjector;
  logger: Logger;
  ecdsaSignatureFormat: EcdsaSignatureFormat;
  maxHashesPerCall: number;
  oauth2Url: string;
  /** The sandbox clock (`SandboxOptions.now`): TSA genTime, OCSP and CRL times. */
  now: () => number;
  /** The TSA, OCSP and CRL signing material; throws until the sandbox knows its PKI base URL. */
  pki: () => PkiMaterial;
  /** `SandboxHandle.setTsaOutage`: the TSA answers 503 while true. */
  tsaDown: boolean;
}

export interface RouteRequest {
  ctx: SandboxContext;
  req: IncomingMessage;
  params: Params;
  /** The raw request body (the binary PKI routes read it; JSON routes use `params`). */
  body: Buffer;
  /** Present on routes that require a Bearer token. */
  grant?: TokenGrant;
  /** The Bearer token when it was a credential-scope one (routes that accept those only). */
  credentialToken?: string;
  /** Injected faults the route carries out itself (the dispatcher handles the others). */
  faults?: RouteFaults;
}

/** Faults the dispatcher chose for a request that only its route can carry out. */
export interface RouteFaults {
  /** signatures/signHash: answer with one signature too few, one too many, or one that does not verify. */
  signatures?: { mode: SignaturesFaultRule['mode']; draw: () => number };
  /** credentials/authorize: the SAD issued is refused as expired after this long or this many uses. */
  sadExpiry?: { afterMs?: number; afterUses?: number };
}

/** A JSON `body`, or an HTML page, or a redirect (302 to `location`), or DER bytes (`binary`). */
export interface RouteResult {
  status?: number;
  body?: unknown;
  html?: string;
  location?: string;
  binary?: { contentType: string; bytes: Buffer };
}

export type RouteHandler = (r: RouteRequest) => RouteResult;

/**
 * The caller behind an `Authorization: Bearer` header: a service token, or, where a route accepts one,
 * a credential-scope token (CSC API v2 signatures/signHash: the SAD is "not needed if the signing
 * application has passed an access token in the Authorization HTTP header with scope credential").
 */
export function authenticateBearer(
  ctx: SandboxContext,
  authorization: string | undefined,
  acceptCredentialScope: boolean,
): { grant: TokenGrant; credentialToken?: string } {
  const token = acceptCredentialScope ? /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1] : undefined;
  const scoped = token === undefined ? undefined : ctx.credentialTokens.lookup(token);
  if (token !== undefined && scoped !== undefined) {
    return {
      grant: { clientId: scoped.clientId, tenant: scoped.tenant, expiresAt: scoped.expiresAt },
      credentialToken: token,
    };
  }
  return { grant: ctx.tokens.authenticate(authorization) };
}

export function requireGrant(r: RouteRequest): TokenGrant {
  if (r.grant === undefined) throw new Error('route needs a token but the dispatcher gave none');
  return r.grant;
}

/**
 * A credential the caller's tenant owns. Another tenant's credential is refused exactly like an
 * unknown one, so a client cannot probe which credential IDs exist elsewhere.
 */
export function ownedCredential(
  ctx: SandboxContext,
  grant: TokenGrant,
  credentialId: string,
): LoadedCredential {
  const cred = ctx.state.credentials.get(credentialId);
  if (cred === undefined || cred.public.tenant !== grant.tenant) throw cscErrors.invalidParam('credentialID');
  return cred;
}

export type OnlineOtpVerdict = { ok: true } | { ok: false; replayed: boolean };

/**
 * Online OTPs (SandboxOptions.onlineOtp, for tests): for those credentials credentials/sendOTP makes a
 * fresh 6-digit code, valid for `lifetimeMs` (5 minutes) and once, replacing any earlier one, and
 * "delivers" it by writing `<outboxDir>/<credentialID>.txt` (mode 0600): that file is the approver's
 * phone. credentials/authorize then accepts that code only (never the credential's TOTP). In memory: a
 * restart forgets the codes sent.
 */
export class OnlineOtpStore {
  private readonly online: ReadonlySet<string>;
  private readonly sent = new Map<string, { code: string; expiresAt: number }>();
  /** The last code accepted per credential, to tell a reuse from a wrong code. */
  private readonly used = new Map<string, string>();

  constructor(
    credentialIds: readonly string[],
    known: ReadonlyMap<string, LoadedCredential>,
    readonly outboxDir: string,
    private readonly lifetimeMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {
    for (const id of credentialIds) {
      const authMode = known.get(id)?.public.authMode;
      if (authMode === undefined) {
        throw new SandboxError(`sandbox option onlineOtp names unknown credential ${id}`);
      }
      if (authMode === 'implicit') {
        throw new SandboxError(`sandbox option onlineOtp names ${id}, an implicit credential: it has no OTP`);
      }
    }
    this.online = new Set(credentialIds);
  }

  isOnline(credentialId: string): boolean {
    return this.online.has(credentialId);
  }

  /** Makes a new code for the credential and writes it to its file on the "phone"; returns the file. */
  send(credentialId: string): string {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const file = path.join(this.outboxDir, `${credentialId}.txt`);
    writeFileReplacingSync(file, `${code}\n`, { durable: false, mode: 0o600, mkdir: 0o700 });
    this.sent.set(credentialId, { code, expiresAt: this.now() + this.lifetimeMs });
    return file;
  }

  /** Whether `code` is the credential's current, unexpired, unused code; spend() records a success. */
  check(credentialId: string, code: string): OnlineOtpVerdict {
    const current = this.sent.get(credentialId);
    if (current !== undefined && this.now() >= current.expiresAt) this.sent.delete(credentialId);
    const live = this.sent.get(credentialId);
    if (live !== undefined && sameSecret(code, live.code)) return { ok: true };
    const last = this.used.get(credentialId);
    return { ok: false, replayed: last !== undefined && sameSecret(code, last) };
  }

  /** Called only once the whole authorisation succeeded: the code then works no more. */
  spend(credentialId: string): void {
    const live = this.sent.get(credentialId);
    if (live === undefined) return;
    this.used.set(credentialId, live.code);
    this.sent.delete(credentialId);
  }
}
