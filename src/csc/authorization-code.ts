// Tenant approval through the provider (custody model 2): the CSC API v2 OAuth2 authorization code flow
// with scope "credential". The application sends the approver's browser to the provider's own
// `oauth2/authorize` page, naming the credential and the number of signatures (under SCAL2 the hashes);
// the approver signs in there with PIN and OTP, which never reach this application; the browser comes
// back to a loopback listener (RFC 8252 section 7.3) with a single-use code; the code buys a
// credential-scope access token that stands in for the SAD: signatures/signHash takes it as the Bearer
// token with no SAD (CSC v2 signHash: the SAD is "not needed if the signing application has passed an
// access token in the Authorization HTTP header with scope credential, which is also good for the
// credential identified by credentialID").
//
// Spec points this follows (CSC API v2.0.0.2 sections 8.4.2 oauth2/authorize and 8.4.3 oauth2/token,
// RFC 6749 section 4.1, RFC 9396): response_type=code, client_id, redirect_uri, scope=credential, state,
// and `authorization_details` = [{type: "credential", credentialID, documentDigests: [{hash, label}],
// hashAlgorithmOID}]; numSignatures rides in the same entry (CSC's query-parameter form names it, and
// a SCAL1 approval has no digests to count). The token answer has access_token, token_type "Bearer" and
// expires_in, which "if omitted, the default expiration time is 3600 (1 hour)". Codes, tokens, PINs and
// OTPs are never logged or put into an error.
//
// PKCE (RFC 7636, which RFC 8252 section 6 asks of a native app's loopback client): each listener makes
// a fresh code_verifier; the authorization request carries its S256 code_challenge and the token
// request the verifier, so a code intercepted on the way back to the loopback port is worth nothing to
// whoever caught it. Done with node:crypto (SHA-256 and base64url), no library.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OID } from './credential-facts';
import { CscError } from './csc-error';
import { extraCaDispatcher, postForm } from './http';

/** CSC v2 oauth2/token: expires_in "if omitted, the default expiration time is 3600 (1 hour)". */
const DEFAULT_TOKEN_LIFETIME_SEC = 3600;
const DEFAULT_APPROVAL_TIMEOUT_MS = 10 * 60_000;

export interface AuthorizationUrlRequest {
  /** The provider's OAuth2 base (CSC /info `oauth2`), e.g. `https://provider.example`. */
  oauth2Base: string;
  clientId: string;
  /** Where the browser comes back to: a `startLoopbackRedirect()` listener's `redirectUri`. */
  redirectUri: string;
  credentialId: string;
  numSignatures: number;
  /** SCAL2: the SHA-256 hashes the approval binds (as many as numSignatures). */
  hashes?: readonly Buffer[];
  /** An unguessable value the listener checks on the way back (RFC 6749 section 10.12). */
  state: string;
  /** RFC 7636: `pkceChallenge(codeVerifier)` of the listener's codeVerifier; sent with method S256. */
  codeChallenge: string;
}

/** RFC 7636 section 4.1: 43 to 128 characters of [A-Za-z0-9-._~]. */
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** A fresh code_verifier: 32 random octets, base64url (43 characters), as RFC 7636 section 4.1 advises. */
export function newCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** The S256 code_challenge of a verifier: BASE64URL(SHA256(ASCII(code_verifier))), RFC 7636 section 4.2. */
export function pkceChallenge(codeVerifier: string): string {
  if (!PKCE_VERIFIER.test(codeVerifier)) {
    throw new CscError({
      endpoint: 'oauth2/authorize',
      retryable: false,
      detail: 'the PKCE code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)',
    });
  }
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/** The URL of the provider's approval page for this request. */
export function buildAuthorizationUrl(r: AuthorizationUrlRequest): string {
  if (!Number.isInteger(r.numSignatures) || r.numSignatures < 1) {
    throw new CscError({
      endpoint: 'oauth2/authorize',
      retryable: false,
      detail: `numSignatures ${r.numSignatures} is not a count`,
    });
  }
  if (r.hashes !== undefined && r.hashes.length !== r.numSignatures) {
    throw new CscError({
      endpoint: 'oauth2/authorize',
      retryable: false,
      detail: `numSignatures ${r.numSignatures} differs from the ${r.hashes.length} hashes to bind`,
    });
  }
  // An S256 challenge is the base64url of a SHA-256: exactly 43 characters.
  if (!/^[A-Za-z0-9_-]{43}$/.test(r.codeChallenge)) {
    throw new CscError({
      endpoint: 'oauth2/authorize',
      retryable: false,
      detail: 'codeChallenge is not an S256 PKCE challenge (use pkceChallenge(codeVerifier))',
    });
  }
  const detail = {
    type: 'credential',
    credentialID: r.credentialId,
    numSignatures: r.numSignatures,
    ...(r.hashes
      ? {
          documentDigests: r.hashes.map((h, i) => ({ hash: h.toString('base64'), label: `#${i + 1}` })),
          hashAlgorithmOID: OID.sha256,
        }
      : {}),
  };
  const url = new URL(authorizeEndpoint(r.oauth2Base));
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', r.clientId);
  url.searchParams.set('redirect_uri', r.redirectUri);
  url.searchParams.set('scope', 'credential');
  url.searchParams.set('authorization_details', JSON.stringify([detail]));
  url.searchParams.set('state', r.state);
  url.searchParams.set('code_challenge', r.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/** `<base>/oauth2/authorize`, also when a provider publishes its OAuth2 folder rather than the base. */
function authorizeEndpoint(oauth2Base: string): string {
  const base = oauth2Base.replace(/\/+$/, '');
  if (/\/oauth2\/authorize$/.test(base)) return base;
  if (/\/oauth2$/.test(base)) return `${base}/authorize`;
  return `${base}/oauth2/authorize`;
}

/**
 * SHA-256 over the hashes' raw bytes, concatenated in order, as lower-case hex: the digest of the hash
 * list a SCAL2 approver compares with the provider's page (the sandbox's page shows the same value).
 */
export function hashListDigest(hashes: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const d of hashes) h.update(d);
  return h.digest('hex');
}

export interface LoopbackRedirectOptions {
  /** The `state` to expect; default a fresh random one (read it back from `state`). */
  state?: string;
  /** How long to wait for the browser; default 10 minutes. */
  timeoutMs?: number;
}

export interface LoopbackRedirect {
  /** `http://127.0.0.1:<port>/callback`: give it to buildAuthorizationUrl and exchangeCode. */
  redirectUri: string;
  state: string;
  /** This approval's PKCE code_verifier: its `pkceChallenge` goes to buildAuthorizationUrl, itself to
   * exchangeCode. A secret like the code: never logged. */
  codeVerifier: string;
  /** The authorization code, once the browser comes back with the right state; rejects with a
   * CscError on an OAuth2 error answer (e.g. `access_denied`) or when nothing came back in time. */
  code: Promise<string>;
  /** Stops listening (also done by itself once settled). */
  close(): Promise<void>;
}

/**
 * An HTTP listener on 127.0.0.1 (a free port) for the provider's redirect. A request without the
 * expected state is answered 400 and otherwise ignored, so a stray or forged request can neither
 * inject a code nor end the wait.
 */
export async function startLoopbackRedirect(
  options: LoopbackRedirectOptions = {},
): Promise<LoopbackRedirect> {
  const state = options.state ?? randomBytes(24).toString('base64url');
  const timeoutMs = options.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
  let settle!: { resolve: (code: string) => void; reject: (err: Error) => void };
  const code = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that stops waiting must not turn a late timeout into an unhandled rejection.
  code.catch(() => undefined);

  let done = false;
  const server = createServer((req, res) => {
    const outcome = done ? undefined : readCallback(req, state);
    if (outcome === undefined || outcome.kind === 'ignored') {
      reply(res, outcome?.status ?? 404, outcome?.message ?? 'Nothing to see here.');
      return;
    }
    done = true;
    if (outcome.kind === 'code') {
      reply(res, 200, 'Approval received. You may close this page.');
      settle.resolve(outcome.code);
    } else {
      reply(
        res,
        400,
        `The approval was not given (${outcome.error.error ?? 'error'}). You may close this page.`,
      );
      settle.reject(outcome.error);
    }
    close().catch(() => undefined);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    settle.reject(
      new CscError({
        endpoint: 'oauth2/authorize',
        retryable: true,
        detail: `no approval came back within ${Math.round(timeoutMs / 1000)} s`,
      }),
    );
    close().catch(() => undefined);
  }, timeoutMs);
  timer.unref();

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    clearTimeout(timer);
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Let the last answer leave, then drop idle browser connections.
      setImmediate(() => server.closeIdleConnections());
    });
    return closed;
  }
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    state,
    codeVerifier: newCodeVerifier(),
    code,
    close,
  };
}

type CallbackOutcome =
  | { kind: 'ignored'; status: number; message: string }
  | { kind: 'code'; code: string }
  | { kind: 'error'; error: CscError };

function readCallback(req: IncomingMessage, state: string): CallbackOutcome {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method !== 'GET' || url.pathname !== '/callback') {
    return { kind: 'ignored', status: 404, message: 'Nothing to see here.' };
  }
  const q = url.searchParams;
  if (q.getAll('state').length !== 1 || q.get('state') !== state) {
    return {
      kind: 'ignored',
      status: 400,
      message: 'This answer does not belong to the approval in progress.',
    };
  }
  const error = q.get('error');
  if (error !== null) {
    return {
      kind: 'error',
      error: new CscError({
        endpoint: 'oauth2/authorize',
        error,
        errorDescription: q.get('error_description') ?? undefined,
        retryable: false,
      }),
    };
  }
  const code = q.get('code');
  if (code === null || code === '' || q.getAll('code').length !== 1) {
    return { kind: 'ignored', status: 400, message: 'The answer carries no authorization code.' };
  }
  return { kind: 'code', code };
}

function reply(res: ServerResponse, status: number, message: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Seal approval</title></head><body><p id="message">${escapeHtml(message)}</p></body></html>`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    Connection: 'close',
  });
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface CodeExchangeRequest {
  /** The provider's `oauth2/token` URL. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  code: string;
  /** The PKCE code_verifier whose challenge the authorization request carried (RFC 7636 section 4.5). */
  codeVerifier: string;
  /** Exactly the redirect_uri of the authorization request (RFC 6749 section 4.1.3). */
  redirectUri: string;
  /** Extra CA certificate(s), PEM, trusted for the provider's TLS besides the platform's roots. */
  caPem?: string | Buffer;
  /** Per-request timeout; default 30000. */
  timeoutMs?: number;
  /** What was asked for: used when the answer does not say how many signatures it grants. */
  numSignatures?: number;
  /** What was asked for: an answer granting another credential is refused. */
  credentialId?: string;
}

export interface CredentialToken {
  /** The credential-scope access token: send it as signHash's Bearer (`credentialToken`), never log it. */
  token: string;
  /** ms since the epoch, counted from when we asked, so never later than the provider's expiry. */
  expiresAt: number;
  /** Signatures the token authorises. */
  numSignatures: number;
  /** who approved, when the provider's answer names them (an ID token) */
  approvedBy?: string;
}

/** Trades the code for the credential-scope token. Sent once: a code presented twice revokes its token. */
export async function exchangeCode(r: CodeExchangeRequest): Promise<CredentialToken> {
  const endpoint = 'oauth2/token';
  const fail = (detail: string) => new CscError({ endpoint, retryable: false, detail });
  const started = Date.now();
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: r.code,
    code_verifier: r.codeVerifier,
    redirect_uri: r.redirectUri,
    client_id: r.clientId,
    client_secret: r.clientSecret,
  });
  const { body } = await postForm(r.tokenUrl, form, {
    endpoint,
    timeoutMs: r.timeoutMs ?? 30_000,
    retry: { maxRetries: 0, maxDelayMs: 0 },
    dispatcher: r.caPem === undefined ? undefined : extraCaDispatcher(r.caPem),
  });
  const token = body.access_token;
  if (typeof token !== 'string' || token === '') throw fail('answer has no access_token');
  if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') {
    throw fail('answer has no token_type "Bearer"');
  }
  if (
    body.scope !== undefined &&
    !(typeof body.scope === 'string' && body.scope.split(' ').includes('credential'))
  ) {
    throw fail('answer does not grant scope "credential"');
  }
  const expiresIn = Number(body.expires_in ?? DEFAULT_TOKEN_LIFETIME_SEC);
  if (!Number.isFinite(expiresIn) || expiresIn <= 0) throw fail('answer has an unusable expires_in');
  const granted = grantedCredential(body.authorization_details);
  if (
    granted.credentialId !== undefined &&
    r.credentialId !== undefined &&
    granted.credentialId !== r.credentialId
  ) {
    throw fail('answer grants another credential than the one asked for');
  }
  const numSignatures = granted.numSignatures ?? r.numSignatures;
  if (numSignatures === undefined || !Number.isInteger(numSignatures) || numSignatures < 1) {
    throw fail('answer does not say how many signatures it grants');
  }
  const approvedBy = approverOf(body.id_token);
  return {
    token,
    expiresAt: started + expiresIn * 1000,
    numSignatures,
    ...(approvedBy ? { approvedBy } : {}),
  };
}

/**
 * Who approved, as the provider reports it: an OpenID Connect ID token in the token answer. Read, not
 * verified: it came straight from the token endpoint over TLS, which OIDC Core 3.1.3.7 allows in place
 * of the signature, and it only names the approver in the audit trail (it grants nothing).
 */
export function approverOf(idToken: unknown): string | undefined {
  if (typeof idToken !== 'string') return undefined;
  const payload = idToken.split('.')[1];
  if (payload === undefined) return undefined;
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const text = (claim: string): string | undefined => {
    const v = claims[claim];
    const clean = typeof v === 'string' ? printable(v).trim().slice(0, 200) : '';
    return clean === '' ? undefined : clean;
  };
  // A name the person may edit, for people to read, and `sub`, the identifier the provider stands by
  // (OIDC: only iss + sub identify), so that a chosen display name cannot pass for someone else.
  const shown = text('preferred_username') ?? text('email') ?? text('name');
  const sub = text('sub');
  if (shown === undefined) return sub;
  return sub === undefined || sub === shown ? shown : `${shown} (sub ${sub})`;
}

/** What RFC 9396 `authorization_details` in the token answer says was granted, when it says it. */
function grantedCredential(details: unknown): { credentialId?: string; numSignatures?: number } {
  if (!Array.isArray(details)) return {};
  const entry = (details as unknown[]).find(
    (d): d is Record<string, unknown> =>
      d !== null && typeof d === 'object' && (d as { type?: unknown }).type === 'credential',
  );
  if (entry === undefined) return {};
  const credentialId = typeof entry.credentialID === 'string' ? entry.credentialID : undefined;
  const numSignatures =
    typeof entry.numSignatures === 'number'
      ? entry.numSignatures
      : Array.isArray(entry.documentDigests)
        ? entry.documentDigests.length
        : undefined;
  return { credentialId, numSignatures };
}

/** Without control or format characters (C0, C1, bidi overrides, line separators): they could forge or
 * hide text in a terminal, a log or the audit trail. */
function printable(s: string): string {
  return s.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '');
}
