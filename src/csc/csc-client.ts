// The typed CSC API client: /info, credentials/info, credentials/authorize, credentials/sendOTP and
// signatures/signHash, each call carrying the service token (refreshed once when the provider refuses
// it; sendOTP is never re-sent). It checks what the provider sends back (counts, encodings) and
// nothing here knows about PDFs, batches or SAD reuse.
// It speaks CSC API v2 (`hashes`, `hashAlgorithmOID`, `authData`) or v1.0.4.0 (`hash`, `hashAlgo`,
// `PIN`/`OTP`), as the provider profile says; service authentication is the same in both.
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Logger } from '../common/logger';
import { CscError, isServiceTokenRefusal } from './csc-error';
import { parseCredentialInfo, OID, type CredentialFacts } from './credential-facts';
import { normaliseEcdsaSignature } from './ecdsa-signature';
import { extraCaDispatcher, postJson, type PostOptions, type RetryPolicy } from './http';
import type { SadReservation } from './sad-reservation';
import { ServiceTokenSource, type CscServiceAuth } from './service-auth';

/** The CSC API generation a provider speaks: v1.0.4.0 (`/csc/v1`) or v2 (`/csc/v2`). */
export type CscApiVersion = 'v1' | 'v2';

export interface CscClientOptions {
  /** The provider's CSC base URL, e.g. ending with `/csc/v2` (or `/csc/v1` for a v1 provider). */
  baseUrl: string;
  /** Which CSC API the provider speaks: request field names follow it. Default `'v2'`. */
  apiVersion?: CscApiVersion;
  /** How the application authenticates itself: OAuth2 client credentials, auth/login, or a static token. */
  auth: CscServiceAuth;
  /** Extra CA certificate(s), PEM, trusted for the provider's TLS besides the platform's roots. */
  caPem?: string | Buffer;
  /** Per-request timeout; default 30000. */
  timeoutMs?: number;
  logger?: Logger;
  /** Re-sends after a 429/503 answer; default 3. credentials/authorize is never re-sent here (see authorize). */
  maxRetries?: number;
  /** Longest back-off accepted from Retry-After before failing instead; default 10000. */
  maxRetryDelayMs?: number;
  /** Clock for token expiry (tests may pass a lagging one); default Date.now. */
  now?: () => number;
}

export interface CscInfo {
  specs?: string;
  name?: string;
  region?: string;
  lang?: string;
  authType: string[];
  /** Base URI of the provider's OAuth2 endpoints (`<oauth2>/oauth2/token`). */
  oauth2?: string;
  methods: string[];
  raw: Record<string, unknown>;
}

export interface AuthorizeRequest {
  credentialId: string;
  numSignatures: number;
  pin?: string;
  otp?: string;
  /** SCAL2: the SHA-256 hashes the SAD is bound to (numSignatures must equal their count). */
  hashes?: Buffer[];
}

/**
 * What to sign and under which authorisation: a reservation from SadManager.reserve() (a SCAL2 one
 * yields its SAD only for exactly the hashes it is bound to), or, for low-level use and tests, a bare SAD,
 * or a credential-scope access token from the authorization code flow (authorization-code.ts). CSC v2
 * signatures/signHash: the SAD is "not needed if the signing application has passed an access token in
 * the Authorization HTTP header with scope credential", so that token goes as the Bearer, alone: no SAD
 * field and no service token.
 */
export type SignHashRequest = {
  credential: CredentialFacts;
  /** SHA-256 digests, 32 bytes each. */
  hashes: Buffer[];
} & (
  | { reservation: SadReservation; sad?: never; credentialToken?: never }
  | { sad: string; reservation?: never; credentialToken?: never }
  | { credentialToken: string; reservation?: never; sad?: never }
);

/**
 * A 2xx answer that cannot be used: no signature list, the wrong number of signatures, an ECDSA value
 * that is neither DER nor raw r||s. One bad answer is the provider's fault, not the invoices', so it is
 * transient (the job's retries send them again later); and the provider may have spent the SAD's count
 * on it, so whoever holds that SAD stops offering it (BatchSigner invalidates it).
 */
export class CscBadReplyError extends CscError {
  constructor(endpoint: string, detail: string, cause?: unknown) {
    super({ endpoint, kind: 'transient', detail, cause });
  }
}

/** The spec's default when credentials/authorize leaves out expiresIn. */
const DEFAULT_SAD_LIFETIME_SEC = 3600;

const CURVE_COORDINATE_BYTES: Record<string, number> = {
  prime256v1: 32,
  'P-256': 32,
  secp384r1: 48,
  'P-384': 48,
  secp521r1: 66,
  'P-521': 66,
};

export class CscClient {
  /** HTTP requests sent per kind, re-sends included. */
  readonly calls = {
    token: 0,
    info: 0,
    credentialsInfo: 0,
    authorize: 0,
    signHash: 0,
    sendOtp: 0,
    timestamp: 0,
  };
  /** The 429/503 policy; the SAD manager applies it to credentials/authorize, which this client never re-sends. */
  readonly retry: Readonly<RetryPolicy>;
  /**
   * No call leaves before this time (ms): a provider that asked one call to wait (429/503 with
   * Retry-After) is over its limit for every call, so the batches in flight and the next ones wait too
   * instead of each spending its re-sends on refusals.
   */
  private notBefore = 0;
  readonly baseUrl: string;
  readonly apiVersion: CscApiVersion;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly tokens: ServiceTokenSource;
  private readonly dispatcher?: PostOptions['dispatcher'];
  private infoPromise?: Promise<CscInfo>;
  /** authData ids learnt from credentials/info, per credential. */
  private readonly authDataIds = new Map<string, { PIN?: string; OTP?: string }>();

  constructor(options: CscClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiVersion = options.apiVersion ?? 'v2';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = { maxRetries: options.maxRetries ?? 3, maxDelayMs: options.maxRetryDelayMs ?? 10_000 };
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.dispatcher = options.caPem === undefined ? undefined : extraCaDispatcher(options.caPem);
    this.tokens = new ServiceTokenSource({
      auth: options.auth,
      tokenUrl: () => this.tokenUrl(),
      loginUrl: `${this.baseUrl}/auth/login`,
      dispatcher: this.dispatcher,
      timeoutMs: this.timeoutMs,
      retry: this.retry,
      now: options.now ?? Date.now,
      onRequest: () => this.calls.token++,
    });
  }

  /** The provider's /info (no token needed); asked once and remembered. */
  info(): Promise<CscInfo> {
    this.infoPromise ??= this.fetchInfo().catch((err: unknown) => {
      this.infoPromise = undefined;
      throw err;
    });
    return this.infoPromise;
  }

  /**
   * credentials/info asking only for what parseCredentialInfo reads: the whole chain and the
   * authorisation details. The request's names are the same in v1.0.4.0 (section 11.5: `certificates`
   * none/single/chain, default single; `authInfo` gives the PIN and OTP groups) and v2 (`authInfo` gives
   * the `auth` object). `certInfo` (OPTIONAL in both, default false) is never sent: some providers
   * answer it with 501, and what it would give (serial, validity, DNs) is read from the certificate.
   */
  async credentialInfo(credentialId: string): Promise<CredentialFacts> {
    const body = await this.call('credentials/info', () => this.calls.credentialsInfo++, {
      credentialID: credentialId,
      certificates: 'chain',
      authInfo: true,
    });
    const facts = parseCredentialInfo(credentialId, body);
    if (facts.authDataIds) this.authDataIds.set(credentialId, facts.authDataIds);
    return facts;
  }

  /**
   * One credentials/authorize request, sent once: re-sending the same body would replay its OTP, which
   * a provider must refuse (RFC 6238 section 5.2). A 429/503 or a refused service token surfaces as a
   * CscError (the token is dropped, so the next call fetches another); the SAD manager retries with a
   * fresh OTP.
   */
  async authorize(req: AuthorizeRequest): Promise<{ sad: string; expiresAt: number }> {
    const endpoint = 'credentials/authorize';
    if (!Number.isInteger(req.numSignatures) || req.numSignatures < 1) {
      throw new CscError({
        endpoint,
        retryable: false,
        detail: `numSignatures ${req.numSignatures} is not a count`,
      });
    }
    if (req.hashes && req.hashes.length !== req.numSignatures) {
      throw new CscError({
        endpoint,
        retryable: false,
        detail: `numSignatures ${req.numSignatures} differs from the ${req.hashes.length} hashes to bind`,
      });
    }
    const started = Date.now();
    const body = await this.call(endpoint, () => this.calls.authorize++, this.authorizeBody(req), {
      resend: false,
    });
    const sad = body.SAD ?? body.sad;
    if (typeof sad !== 'string' || sad === '') {
      throw new CscError({ endpoint, retryable: false, detail: 'answer has no SAD' });
    }
    // expiresIn is OPTIONAL in both v1.0.4.0 (section 11.6) and v2; absent, the spec's 3600 s apply.
    const expiresIn = Number(body.expiresIn ?? DEFAULT_SAD_LIFETIME_SEC);
    if (!Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new CscError({ endpoint, retryable: false, detail: 'answer has an unusable expiresIn' });
    }
    // Counted from when we asked, so our idea of expiry is never later than the provider's.
    return { sad, expiresAt: started + expiresIn * 1000 };
  }

  /**
   * credentials/sendOTP: asks the provider to generate an online OTP for the credential and send it to
   * its holder (CSC v1.0.4.0 and v2: `credentialID`, optional `clientData`; the same body under both),
   * for credentials whose credentials/info says the OTP is online (v1 `OTP/type: "online"`; v2 an OTP
   * auth object whose `generator` is not a TOTP: facts.otpGenerator `'other'`). The answer carries
   * nothing: v2 says 204 No Content, and an empty 200 (or one with a JSON body) is taken as success too.
   * Sent once and never re-sent, not after a 429/503 nor with a fresh service token: each call texts a
   * person. Any refusal is a CscError.
   */
  async sendOtp(credentialId: string, clientData?: string): Promise<void> {
    const endpoint = 'credentials/sendOTP';
    const body = { credentialID: credentialId, ...(clientData !== undefined ? { clientData } : {}) };
    try {
      await this.call(endpoint, () => this.calls.sendOtp++, body, { resend: false });
    } catch (err) {
      // A 2xx whose body is empty (or not JSON) still means "sent": this method has no output values.
      if (err instanceof CscError && err.status !== undefined && err.status >= 200 && err.status < 300) {
        return;
      }
      throw err;
    }
  }

  /**
   * The credentials/authorize body. v2: factors as `authData` objects (ids from credentials/info's
   * auth/objects), SCAL2 hashes as `hashes` + `hashAlgorithmOID`. v1.0.4.0 section 11.6: `PIN` and `OTP`
   * are top-level strings ("used only when authMode is explicit and PIN/presence [OTP/presence] is not
   * false"), and under SCAL2 the SAD is bound to the `hash` array (no hash algorithm parameter there).
   */
  private authorizeBody(req: AuthorizeRequest): Record<string, unknown> {
    const head = { credentialID: req.credentialId, numSignatures: req.numSignatures };
    if (this.apiVersion === 'v1') {
      return {
        ...head,
        ...(req.hashes ? { hash: req.hashes.map(b64) } : {}),
        ...(req.pin !== undefined ? { PIN: req.pin } : {}),
        ...(req.otp !== undefined ? { OTP: req.otp } : {}),
      };
    }
    const ids = this.authDataIds.get(req.credentialId) ?? {};
    const authData: Array<{ id: string; value: string }> = [];
    if (req.pin !== undefined) authData.push({ id: ids.PIN ?? 'PIN', value: req.pin });
    if (req.otp !== undefined) authData.push({ id: ids.OTP ?? 'OTP', value: req.otp });
    return {
      ...head,
      ...(req.hashes ? { hashes: req.hashes.map(b64), hashAlgorithmOID: OID.sha256 } : {}),
      ...(authData.length > 0 ? { authData } : {}),
    };
  }

  /** Sign SHA-256 hashes; the result is in the hashes' order, ECDSA values as DER. */
  async signHash(req: SignHashRequest): Promise<Buffer[]> {
    const endpoint = 'signatures/signHash';
    const { credential, hashes } = req;
    if (req.credentialToken !== undefined && this.apiVersion === 'v1') {
      // CSC v1.0.4.0 section 11.9 makes SAD REQUIRED: there is no credential-scope token in place of it.
      throw new CscError({
        endpoint,
        retryable: false,
        detail:
          'a credential-scope access token (approval on the provider page) is a CSC v2 authorisation; this provider speaks CSC v1.0.4, whose signatures/signHash needs a SAD from credentials/authorize',
      });
    }
    if (hashes.length === 0) throw new CscError({ endpoint, retryable: false, detail: 'no hashes to sign' });
    const bad = hashes.findIndex((h) => h.length !== 32);
    if (bad >= 0) {
      throw new CscError({
        endpoint,
        retryable: false,
        detail: `hash ${bad} has ${hashes[bad]!.length} bytes, not the 32 of SHA-256`,
      });
    }
    const count = () => this.calls.signHash++;
    // v1.0.4.0 section 11.9 names them `hash` and `hashAlgo`; v2 `hashes` and `hashAlgorithmOID`. The hash
    // algorithm is sent even where signAlgo implies it: both specs say it is then "omitted or ignored".
    const request =
      this.apiVersion === 'v1'
        ? {
            credentialID: credential.credentialId,
            hash: hashes.map(b64),
            hashAlgo: OID.sha256,
            signAlgo: credential.signAlgoOid,
          }
        : {
            credentialID: credential.credentialId,
            hashes: hashes.map(b64),
            hashAlgorithmOID: OID.sha256,
            signAlgo: credential.signAlgoOid,
          };
    let body: Record<string, unknown>;
    if (req.credentialToken !== undefined) {
      body = await this.callWithCredentialToken(endpoint, count, req.credentialToken, request);
    } else {
      const sad = req.reservation ? req.reservation.sadFor(hashes, credential.credentialId) : req.sad;
      body = await this.call(endpoint, count, { ...request, SAD: sad });
    }
    const list = body.signatures;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '')) {
      throw new CscBadReplyError(endpoint, 'answer has no list of base64 signatures');
    }
    if (list.length !== hashes.length) {
      throw new CscBadReplyError(
        endpoint,
        `provider returned ${list.length} signatures for ${hashes.length} hashes`,
      );
    }
    const raw = (list as string[]).map((s) => Buffer.from(s, 'base64'));
    if (credential.keyAlgorithm !== 'ecdsa') return raw;
    const coordinateBytes = credential.ecCurve ? CURVE_COORDINATE_BYTES[credential.ecCurve] : undefined;
    return raw.map((sig, i) => {
      try {
        return normaliseEcdsaSignature(sig, coordinateBytes);
      } catch (err) {
        throw new CscBadReplyError(endpoint, `signature ${i}: ${(err as Error).message}`, err);
      }
    });
  }

  /**
   * signatures/timestamp (CSC v2 section 11.11, v1.0.4.0 section 11.10; both name the fields `hash`,
   * `hashAlgo`, `nonce`): an RFC 3161 TimeStampToken over a SHA-256 digest, from the provider's own TSA.
   * The token comes back unchecked: the caller checks imprint, nonce and TSA chain (pades) before use.
   */
  async timestamp(digest: Buffer, nonce: Buffer): Promise<Buffer> {
    const endpoint = 'signatures/timestamp';
    if (digest.length !== 32) {
      throw new CscError({
        endpoint,
        retryable: false,
        detail: `digest has ${digest.length} bytes, not the 32 of SHA-256`,
      });
    }
    const body = await this.call(endpoint, () => this.calls.timestamp++, {
      hash: b64(digest),
      hashAlgo: OID.sha256,
      nonce: nonce.toString('hex'),
    });
    const token = body.timestamp;
    if (typeof token !== 'string' || token === '') {
      throw new CscBadReplyError(endpoint, 'answer has no base64 timestamp token');
    }
    return Buffer.from(token, 'base64');
  }

  /**
   * POST with a credential-scope token as the Bearer. Its refusal (spent, expired, another credential)
   * is final: no service token can stand in, and only a new approval gives another token.
   */
  private async callWithCredentialToken(
    endpoint: string,
    count: () => void,
    token: string,
    body: unknown,
  ): Promise<Record<string, unknown>> {
    const url = `${this.baseUrl}/${endpoint}`;
    return (await postJson(url, body, { ...this.postOptions(endpoint, count), bearer: token })).body;
  }

  private async fetchInfo(): Promise<CscInfo> {
    const { body } = await postJson(
      `${this.baseUrl}/info`,
      {},
      this.postOptions('info', () => this.calls.info++),
    );
    const strings = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    return {
      specs: text(body.specs),
      name: text(body.name),
      region: text(body.region),
      lang: text(body.lang),
      authType: strings(body.authType),
      oauth2: text(body.oauth2),
      methods: strings(body.methods),
      raw: body,
    };
  }

  /** `<oauth2 base>/oauth2/token`, the base from /info, else the origin of the CSC base URL. */
  async tokenUrl(): Promise<string> {
    const info = await this.info();
    const base = new URL(info.oauth2 ?? new URL(this.baseUrl).origin, `${this.baseUrl}/`)
      .toString()
      .replace(/\/+$/, '');
    // Some providers publish the OAuth2 folder or the token endpoint itself rather than the base.
    if (/\/oauth2\/token$/.test(base)) return base;
    if (/\/oauth2$/.test(base)) return `${base}/token`;
    return `${base}/oauth2/token`;
  }

  /**
   * POST with the service token. A refused token is dropped and, when `resend` allows, the same body
   * re-sent once with a new token; `resend: false` also turns off the 429/503 re-sends. A refused
   * static bearer token fails at once: only whoever configured it can replace it.
   */
  private async call(
    endpoint: string,
    count: () => void,
    body: unknown,
    { resend = true }: { resend?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    const url = `${this.baseUrl}/${endpoint}`;
    const options = this.postOptions(endpoint, count, resend);
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokens.token();
      try {
        return (await postJson(url, body, { ...options, bearer: token })).body;
      } catch (err) {
        // Also a 429 on a call sent once (authorize) or with a wait too long to take: every call waits.
        if (err instanceof CscError && (err.status === 429 || err.status === 503) && err.retryAfterMs) {
          this.notBefore = Math.max(this.notBefore, Date.now() + err.retryAfterMs);
        }
        if (err instanceof CscError && isServiceTokenRefusal(err)) {
          if (!this.tokens.refreshable) {
            this.logger.warn({ endpoint }, 'CSC provider refused the configured bearer token');
            throw configuredTokenRefused(err);
          }
          this.tokens.invalidate(token);
          if (resend && attempt === 0) {
            this.logger.info({ endpoint }, 'CSC service token refused; fetching a new one and re-sending');
            continue;
          }
          this.logger.info({ endpoint }, 'CSC service token refused; the next call fetches a new one');
        }
        throw err;
      }
    }
  }

  private postOptions(endpoint: string, count: () => void, resend = true): PostOptions {
    return {
      endpoint,
      timeoutMs: this.timeoutMs,
      retry: resend ? this.retry : { ...this.retry, maxRetries: 0 },
      onSend: count,
      beforeSend: async () => {
        const wait = this.notBefore - Date.now();
        if (wait > 0) await sleep(wait);
      },
      onBackoff: (b) => {
        this.notBefore = Math.max(this.notBefore, Date.now() + b.waitMs);
        this.logger.warn(b, 'CSC provider asked to slow down; waiting');
      },
      dispatcher: this.dispatcher,
    };
  }
}

/** The provider's refusal, kept whole, with a message that points at the configuration. */
function configuredTokenRefused(err: CscError): CscError {
  const said = err.message.replace(/^CSC \S+ failed: /, '');
  return new CscError({
    endpoint: err.endpoint,
    status: err.status,
    error: err.error,
    errorDescription: err.errorDescription,
    challengeError: err.challengeError,
    retryable: false,
    detail: `${said} (the configured bearer token was refused; refreshing cannot fix a static token)`,
    cause: err,
  });
}

function b64(b: Buffer): string {
  return b.toString('base64');
}
