// TOTP codes for credentials whose OTP the application holds as a secret (RFC 6238, via otplib), and
// the time step a code belongs to (what a verifier remembers to refuse a replay). The secret is used
// for one computation and not kept.
import { createGuardrails, generateSync } from 'otplib';
import { CscError } from './csc-error';

// Providers hand out 80-bit secrets (Google Authenticator's usual size); otplib's default floor is 128.
const guardrails = createGuardrails({ MIN_SECRET_BYTES: 10 });

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpOptions {
  /** Code length; default 6 (RFC 4226 asks for at least 6; 8 is the usual maximum). */
  digits?: number;
  /** Time step X in seconds; default 30 (RFC 6238 section 5.2). */
  period?: number;
  /** HMAC hash; default SHA1. */
  algorithm?: TotpAlgorithm;
  /** Clock in milliseconds; default Date.now(). */
  now?: number;
}

const ALGORITHMS: Record<TotpAlgorithm, 'sha1' | 'sha256' | 'sha512'> = {
  SHA1: 'sha1',
  SHA256: 'sha256',
  SHA512: 'sha512',
};

/** Why these TOTP settings cannot work, or undefined when they can. */
export function totpSettingsProblem(o: Omit<TotpOptions, 'now'>): string | undefined {
  if (o.digits !== undefined && !(Number.isInteger(o.digits) && o.digits >= 6 && o.digits <= 8)) {
    return `totpDigits ${o.digits} is not 6, 7 or 8`;
  }
  if (o.period !== undefined && !(Number.isInteger(o.period) && o.period >= 1 && o.period <= 3600)) {
    return `totpPeriod ${o.period} is not a whole number of seconds from 1 to 3600`;
  }
  if (o.algorithm !== undefined && !Object.hasOwn(ALGORITHMS, o.algorithm)) {
    return `totpAlgorithm ${JSON.stringify(o.algorithm)} is not one of SHA1, SHA256, SHA512`;
  }
  return undefined;
}

/** RFC 6238 T: the number of whole periods since the Unix epoch (T0 = 0). */
export function totpTimeStep(nowMs: number, periodSec = 30): number {
  return Math.floor(nowMs / 1000 / periodSec);
}

export function totpCode(secret: string, options: TotpOptions = {}): string {
  const problem = totpSettingsProblem(options);
  if (problem) throw new CscError({ endpoint: 'credentials/authorize', retryable: false, detail: problem });
  return generateSync({
    secret: secret.replace(/[\s-]/g, '').toUpperCase(),
    digits: options.digits ?? 6,
    period: options.period ?? 30,
    algorithm: ALGORITHMS[options.algorithm ?? 'SHA1'],
    epoch: Math.floor((options.now ?? Date.now()) / 1000),
    guardrails,
  });
}

/**
 * True when an `invalid_otp` refusal says the code was already used (RFC 6238 section 5.2: a verifier
 * accepts a step once), by its code or its wording: the sandbox says "The OTP was already used ...",
 * other providers "OTP replayed", "code has been used before" or an `otp_already_used` code. A bare
 * `invalid_otp` is not taken for a replay: that one may be a wrong secret.
 */
export function isOtpReplayRefusal(err: CscError): boolean {
  if (err.code !== undefined && /replay|already_used|reused|used_before/.test(err.code)) return true;
  if (err.code !== 'invalid_otp') return false;
  return REPLAY_WORDING.test(err.errorDescription ?? '');
}

const REPLAY_WORDING =
  /\b(already|previously)\s+(been\s+)?(used|consumed|redeemed|spent)\b|\breplay(ed)?\b|\bre-?used\b|\bused\s+(before|twice)\b/i;
