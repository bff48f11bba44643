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
  /** Artificial delay added to every HTTP call, in milliseconds. Default `0`. */
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
  /** Clock (ms since the epoch) for TOTP checks only, for tests that move time forward instead of
   * waiting out time steps; SAD, token and lockout times always follow the real clock. Default `Date.now`. */
  totpNow?: () => number;
  /** Tests only: credential IDs whose OTP is online, sent to the holder by `credentials/sendOTP` instead
   * of computed from the TOTP secret. credentials/info describes it so (v2: OTP object with `generator`
   * `"sms"`; v1: `OTP/type: "online"`); each sendOTP makes a fresh 6-digit code, valid 5 minutes and
   * once (a newer one replaces it), written to `<dataDir>/outbox-otp/<credentialID>.txt` (mode 0600: the
   * approver's phone); credentials/authorize then accepts that code only, never the TOTP. Default none. */
  onlineOtp?: string[];
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
  close(): Promise<void>;
}
