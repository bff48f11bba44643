// PIN + OTP checks shared by credentials/authorize (authorize-route.ts) and the provider's approval
// page: refused while the credential is locked, every failure (a replayed OTP too, RFC 6238 section
// 5.2) counts towards the lockout, and only a full success spends the OTP (its TOTP time step, or the
// online code credentials/sendOTP sent). A credential with an online OTP (SandboxOptions.onlineOtp)
// takes the code last sent to its holder only, never its TOTP.
import { sameSecret } from './constant-time';
import type { SandboxContext } from './context';
import { CscProtocolError, cscErrors } from './csc-errors';
import type { LoadedCredential } from './provisioning';

export type OtpVerdict = { ok: true; spend: () => void } | { ok: false; replayed: boolean; online: boolean };

/** Whether `otp` is the credential's valid, unused OTP: a TOTP code, or the online code sent to it. */
export function checkOtp(ctx: SandboxContext, cred: LoadedCredential, otp: string): OtpVerdict {
  const credentialId = cred.public.credentialId;
  if (ctx.onlineOtp.isOnline(credentialId)) {
    const v = ctx.onlineOtp.check(credentialId, otp);
    return v.ok
      ? { ok: true, spend: () => ctx.onlineOtp.spend(credentialId) }
      : { ok: false, replayed: v.replayed, online: true };
  }
  const v = ctx.totp.check(credentialId, cred.totpSecret, otp);
  return v.ok
    ? { ok: true, spend: () => ctx.totp.accept(credentialId, v.step) }
    : { ok: false, replayed: v.replayed, online: false };
}

/** The invalid_otp refusal for a failed OTP check. */
export function otpRefusal(v: OtpVerdict): CscProtocolError {
  if (v.ok || !v.replayed) return cscErrors.invalidOtp();
  return v.online
    ? new CscProtocolError(
        400,
        'invalid_otp',
        'The OTP was already used (a code is accepted once); ask for a new one with credentials/sendOTP',
      )
    : cscErrors.otpAlreadyUsed();
}

/** Throws the CSC refusal (invalid_pin, invalid_otp, locked) or returns once PIN and OTP are right. */
export function checkKeyFactors(
  ctx: SandboxContext,
  cred: LoadedCredential,
  factors: { pin: string; otp: string; clientId: string },
): void {
  const credentialId = cred.public.credentialId;
  ctx.lock.assertUnlocked(credentialId);
  const pinOk = sameSecret(factors.pin, cred.pin);
  const otp = checkOtp(ctx, cred, factors.otp);
  if (!pinOk || !otp.ok) {
    const lockedNow = ctx.lock.recordFailure(credentialId);
    const replayed = !otp.ok && otp.replayed;
    const failed = !pinOk ? 'PIN' : replayed ? 'OTP replayed' : 'OTP';
    ctx.logger.info(
      { credentialID: credentialId, clientId: factors.clientId, failed, lockedNow, via: 'approval page' },
      'sandbox: credential authorisation failed',
    );
    if (!pinOk) throw cscErrors.invalidPin();
    throw otpRefusal(otp);
  }
  ctx.lock.recordSuccess(credentialId);
  otp.spend();
}
