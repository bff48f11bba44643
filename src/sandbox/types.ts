// Public types of the local CSC sandbox: the options it starts with, the credentials it provisions
// and the handle it returns. Other parts (CLI, tests, demo) depend on exactly these shapes.
import type { Logger } from 'pino';

export interface SandboxOptions {
  /** Where keys, certificates and secrets live; created and provisioned on first start, reused after. */
  dataDir: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port. Default `0` (a free port; read the real one from `SandboxHandle.url`). */
  port?: number;
  /** Artificial delay added to every HTTP call (but `/sandbox/faults`), in milliseconds. Default `0`. */
  latencyMs?: number;
  /** How `signatures/signHash` returns ECDSA signatures: DER `ECDSA-Sig-Value` or raw r||s. Default `'der'`. */
  ecdsaSignatureFormat?: 'der' | 'raw';
  /** SAD lifetime in seconds. Default `3600`. Fractions are allowed (for tests); `expiresIn` is rounded up. */
  sadLifetimeSec?: number;
  /** OAuth2 access-token lifetime in seconds. Default `3600`. Fractions allowed, as above. */
  tokenLifetimeSec?: number;
  /** Most hashes one `signatures/signHash` call may carry. Default `100`. */
  maxHashesPerCall?: number;
  /** Consecutive failed `credentials/authorize` calls that lock a credential. Default `5`. */
  lockAfterFailures?: number;
  /** How long a locked credential stays locked, in seconds. Default `300`. Fractions allowed. */
  lockSeconds?: number;
  /** TOTP time step X in seconds (RFC 6238), for every credential. Default `30`. A whole number from 1 to
   * 3600; tests use 1 so that credentials can be authorised often (a code's step is accepted only once).
   * The secret files stay RFC 6238 secrets; clients must be told the period (CSC's credentials/info has
   * no field for it, so it travels in the job definition's `totpPeriod`). */
  totpPeriodSec?: number;
  /** Clock (ms since the epoch) for every lifetime the sandbox keeps: service and credential-scope
   * tokens, SADs (and `sad-expiry` faults), authorization codes, pending approvals, online OTPs and
   * lockouts. Tests pass one they move forward, so that expiry is a step they take rather than a race
   * with the machine's speed. TOTP checks follow it too unless `totpNow` is given. Default `Date.now`. */
  now?: () => number;
  /** Clock for TOTP checks only (ms since the epoch), for tests that move TOTP time forward instead of
   * waiting out time steps. Default: `now`, else `Date.now`. */
  totpNow?: () => number;
  /** Tests only: credential IDs whose OTP is online, sent to the holder by `credentials/sendOTP` instead
   * of computed from the TOTP secret. credentials/info describes it so (v2: OTP object with `generator`
   * `"sms"`; v1: `OTP/type: "online"`); each sendOTP makes a fresh 6-digit code, valid 5 minutes and
   * once (a newer one replaces it), written to `<dataDir>/outbox-otp/<credentialID>.txt` (mode 0600: the
   * approver's phone); credentials/authorize then accepts that code only, never the TOTP. Default none. */
  onlineOtp?: string[];
  /** Also provision the `bench` tenant (client `bench-app`): credentials `bench-eseal-rsa` (RSA-2048) and
   * `bench-eseal-ec` (P-256), SCAL1, PIN + OTP, `multisign` 100,000, for benchmarks at the real 30 s TOTP
   * step. A dataDir keeps it once made. Default `false` (its RSA key would slow every fresh dataDir). */
  benchTenant?: boolean;
  /** Per-credentialID override of `multisign` (not persisted), for tests. */
  multisign?: Record<string, number>;
  /** Logger; default `createLogger({ name: 'sandbox' })`. Secrets are never logged. */
  logger?: Logger;
  /** The origin clients reach the sandbox at (e.g. `http://sandbox:8700` behind Docker), advertised as
   * the `oauth2` base in `/info`. Default: `http://<host>:<port>` (`https://` with `tls`). */
  publicUrl?: string;
  /** Serve HTTPS with a server certificate issued by the sandbox's own root CA (SAN: localhost,
   * 127.0.0.1, ::1, `host` and the `publicUrl` host), kept in `tls/server.pem`; clients must trust
   * `rootCertPath`. Default `false` (plain HTTP). */
  tls?: boolean;
  /** Fault injection: a plan, or the compact spec string `sealer sandbox --faults` takes (see README,
   * "Fault injection"). Rules can be replaced while running (`POST /sandbox/faults`,
   * `SandboxHandle.faults.replace`). Default: no faults. */
  faults?: FaultPlan | string;
  /** Validity in days of the TSA certificate (`tsa/cert.pem`). Default `3650`. A stored one whose
   * validity is of another length, that has expired (by `now`) or names other URLs is replaced at start
   * by one for the same key; tests pass e.g. `30` to get one that expires soon. */
  tsaCertificateDays?: number;
  /** Delay added to every TSA answer (`POST /tsa` and `signatures/timestamp`), in ms. Default `0`. */
  tsaLatencyMs?: number;
  /** Base URL of the OCSP responder, CRL and CA certificate named in the certificates the sandbox
   * issues (AIA `<pkiBaseUrl>/ocsp` and `<pkiBaseUrl>/ca/root.cer`, CRL DP `<pkiBaseUrl>/crl/root.crl`).
   * Default: `publicUrl`, else the listening origin. Certificates naming other URLs are re-issued at
   * start for the same key (new serial), so with port 0 every start re-issues them; a test that needs
   * the same certificates across restarts passes a fixed value. */
  pkiBaseUrl?: string;
  /** Credentials whose certificate has no OCSP URL in its AIA (only the CRL distribution point), so
   * clients take their "CRL otherwise" path. Default `['sakura-eseal-implicit']`. */
  crlOnlyCredentials?: string[];
}

/** CRLReason names (RFC 5280 section 5.3.1) that `revoke` accepts. */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

/** CSC method names (as under `/csc/v2/`), plus `oauth2/token` and the PKI endpoints `tsa` (POST /tsa),
 * `ocsp` (/ocsp) and `crl` (/crl/root.crl): what a fault rule can name. */
export type FaultEndpoint =
  | 'info'
  | 'auth/login'
  | 'credentials/list'
  | 'credentials/info'
  | 'credentials/authorize'
  | 'credentials/sendOTP'
  | 'signatures/signHash'
  | 'signatures/timestamp'
  | 'oauth2/token'
  | 'tsa'
  | 'ocsp'
  | 'crl';

interface FaultRuleBase {
  /** One endpoint (v1 and v2 alike), or `csc`: every CSC method (never `oauth2/token`, `tsa`, `ocsp`, `crl`). */
  endpoint: FaultEndpoint | 'csc';
  /** Share of the endpoint's requests this rule hits, 0..1. */
  rate: number;
  /** At most this many injections by this rule; absent = no limit. */
  max?: number;
}

/** An error answer with a CSC body; 429 always, 503 optionally, carries `Retry-After` (seconds). */
export interface StatusFaultRule extends FaultRuleBase {
  fault: 'status';
  status: 500 | 503 | 429;
  retryAfterSec?: number;
}
/** Added delay before the request is handled: `minMs` = `maxMs` for a fixed one, else uniform. */
export interface LatencyFaultRule extends FaultRuleBase {
  fault: 'latency';
  minMs: number;
  maxMs: number;
}
/** Never answers: the connection stays open until the client gives up (or the sandbox closes). */
export interface HangFaultRule extends FaultRuleBase {
  fault: 'hang';
}
/** Destroys the connection: `before` the request is handled (nothing spent), `after` it was handled
 * (e.g. a SAD spent) with no byte of the answer sent, or `mid`way through the answer's body. */
export interface DropFaultRule extends FaultRuleBase {
  fault: 'drop';
  when: 'before' | 'after' | 'mid';
}
/** signatures/signHash only: one signature `missing` or one `extra`, or one that does not verify
 * (`wrong-hash`: a real signature over another hash; `corrupt`: a flipped byte). */
export interface SignaturesFaultRule extends FaultRuleBase {
  fault: 'signatures';
  mode: 'missing' | 'extra' | 'wrong-hash' | 'corrupt';
}
/** credentials/authorize only: the SAD still says its full `expiresIn`, but is refused as expired
 * after `afterSec` seconds, or after `afterUses` signHash calls, whichever comes first. */
export interface SadExpiryFaultRule extends FaultRuleBase {
  fault: 'sad-expiry';
  afterSec?: number;
  afterUses?: number;
}

/** A provider's rate limit: at most `perSecond` requests in each second (a fixed window, as many
 * front ends count); the rest of that second is answered 429 with Retry-After (whole seconds). */
export interface LimitFaultRule extends FaultRuleBase {
  fault: 'limit';
  perSecond: number;
}

export type FaultRule =
  | LimitFaultRule
  | StatusFaultRule
  | LatencyFaultRule
  | HangFaultRule
  | DropFaultRule
  | SignaturesFaultRule
  | SadExpiryFaultRule;

/** Fault rules and the seed of their pseudo-random draws (same seed + same requests = same faults). */
export interface FaultPlan {
  /** Any string or integer; default: a random one, reported by `GET /sandbox/faults`. */
  seed?: string | number;
  rules: FaultRule[];
}

/** What `GET /sandbox/faults` answers. */
export interface FaultState {
  seed: string;
  /** The rules in force, normalised, each with how many faults it injected. */
  rules: (FaultRule & { injected: number })[];
  /** Faults injected per endpoint and kind (`status:503`, `latency`, `hang`, `drop:mid`,
   * `signatures:missing`, `sad-expiry`, ...), plus `sad-expired-early` at signatures/signHash: SADs
   * refused because of a `sad-expiry` fault. */
  injected: Partial<Record<FaultEndpoint, Record<string, number>>>;
  /** Sum of `injected` (not counting `sad-expired-early`, an effect rather than an injection). */
  total: number;
  /** Requests per endpoint that rules were drawn for since the rules were set. */
  requests: Partial<Record<FaultEndpoint, number>>;
  /** Requests hanging right now (a `hang` fault, the client has not given up yet). */
  hanging: number;
}

export interface SandboxFaults {
  /** Replaces the rules (and the seed, when the plan gives one), restarting the draws; counts are
   * kept unless `resetCounts`. Throws SandboxError naming the bad rule and field. */
  replace(plan: FaultPlan | string, options?: { resetCounts?: boolean }): FaultState;
  state(): FaultState;
}

/** CSC `auth/mode` of a credential: `explicit` asks for PIN AND OTP in `authData`; `implicit` asks for
 * nothing (the service token alone authorises, and `authData` is refused). */
export type SandboxAuthMode = 'explicit' | 'implicit';

export interface SandboxCredential {
  tenant: string;
  clientId: string;
  credentialId: string;
  keyType: 'rsa-2048' | 'ecdsa-p256';
  scal: 1 | 2;
  multisign: number;
  authMode: SandboxAuthMode;
  /** Certificate serial as upper-case hex, 32 digits, first digit 1-7 (same as `cert/serialNumber`). */
  certificateSerialHex: string;
  /** Files holding the secrets, mode 0600, one value followed by a newline: readers should trim. */
  clientSecretFile: string;
  /** The tenant's CSC `auth/login` (HTTP Basic) username and password. */
  loginUserFile: string;
  loginPasswordFile: string;
  /** The tenant's long-lived API token, accepted as a Bearer token on every CSC method. */
  apiTokenFile: string;
  /** An implicit credential has no PIN or TOTP secret: its files hold random values that are neither
   * (they exist so that every credential has the same files) and that the sandbox never accepts. */
  pinFile: string;
  totpSecretFile: string;
  /** The TOTP time step in seconds this sandbox runs with (`SandboxOptions.totpPeriodSec`); codes are
   * 6 digits, HMAC-SHA-1. */
  totpPeriodSec: number;
}

export interface SandboxStats {
  /** Service-token requests: `oauth2/token` and `auth/login`. */
  token: number;
  info: number;
  credentialsInfo: number;
  authorize: number;
  signHash: number;
  /** Signatures actually produced (sum of hashes over successful signHash calls). */
  signatures: number;
  /** Responses with an HTTP status >= 400. */
  errors: number;
  /** CSC `signatures/timestamp` calls (v2 and v1). */
  timestamp: number;
  /** RFC 3161 requests to `POST /tsa` (granted or not). */
  tsa: number;
  /** OCSP requests (POST and GET /ocsp). */
  ocsp: number;
  /** CRL downloads (`GET /crl/root.crl`). */
  crl: number;
}

export interface SandboxHandle {
  /** CSC base URL, e.g. `http://127.0.0.1:PORT/csc/v2` (`https://` when started with `tls`). */
  url: string;
  /** OAuth2 base URL, e.g. `http://127.0.0.1:PORT` (token endpoint at `${oauth2Url}/oauth2/token`). */
  oauth2Url: string;
  /** The test root CA: issuer of the e-seal certificates and, with `tls`, of the server certificate. */
  rootCertPath: string;
  rootCertPem: string;
  /** With `tls`: the file holding the server's key and certificate (`<dataDir>/tls/server.pem`). */
  tlsServerPath?: string;
  credentials: SandboxCredential[];
  stats(): SandboxStats;
  resetStats(): void;
  /** Every access token and SAD issued so far (the last 10,000): what a test greps logs and stores for. */
  issuedSecrets(): string[];
  /** Fault injection (the same as `GET`/`POST /sandbox/faults`). */
  faults: SandboxFaults;
  /** RFC 3161 TSA URL (`<origin>/tsa`; POST application/timestamp-query). */
  tsaUrl: string;
  /** OCSP responder URL (`<origin>/ocsp`; POST application/ocsp-request, or GET `/ocsp/<base64>`). */
  ocspUrl: string;
  /** The root's CRL (`<origin>/crl/root.crl`, DER). */
  crlUrl: string;
  /** The TSA certificate in force (PEM) and its file `<dataDir>/tsa/cert.pem`; both follow rotations. */
  readonly tsaCertificatePem: string;
  tsaCertificatePath: string;
  /** Replaces the TSA certificate with one of `days` validity (same key, new serial) from now on. */
  rotateTsaCertificate(days: number): Promise<string>;
  /** Marks the credential's current certificate revoked (persisted in dataDir; OCSP and CRL show it at
   * once). Default reason `unspecified`; `at` defaults to the sandbox clock. Returns the serial (hex). */
  revoke(credentialId: string, reason?: RevocationReason, at?: Date): string;
  /** `true`: the TSA (`/tsa` and `signatures/timestamp`) answers 503 until switched back. */
  setTsaOutage(down: boolean): void;
  close(): Promise<void>;
}
