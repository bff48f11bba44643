// PIN + TOTP check for the provider's approval page, with the same rules as credentials/authorize
// (authorize-route.ts): refused while the credential is locked, every failure (a replayed OTP too,
// RFC 6238 section 5.2) counts towards the lockout, and only a full success spends the OTP's time step.
import { sameSecret } from './constant-time';
import type { SandboxContext } from './context';
import { cscErrors } from './csc-errors';
import type { LoadedCredential } from './provisioning';

/** Throws the CSC refusal (invalid_pin, invalid_otp, locked) or returns once PIN and OTP are right. */
export function checkKeyFactors(
  ctx: SandboxContext,
  cred: LoadedCredential,
  factors: { pin: string; otp: string; clientId: string },
): void {
  const credentialId = cred.public.credentialId;
  ctx.lock.assertUnlocked(credentialId);
  const pinOk = sameSecret(factors.pin, cred.pin);
  const otp = ctx.totp.check(credentialId, cred.totpSecret, factors.otp);
  if (!pinOk || !otp.ok) {
    const lockedNow = ctx.lock.recordFailure(credentialId);
    const replayed = !otp.ok && otp.replayed;
    const failed = !pinOk ? 'PIN' : replayed ? 'OTP replayed' : 'OTP';
    ctx.logger.info(
      { credentialID: credentialId, clientId: factors.clientId, failed, lockedNow, via: 'approval page' },
      'sandbox: credential authorisation failed',
    );
    if (!pinOk) throw cscErrors.invalidPin();
    throw replayed ? cscErrors.otpAlreadyUsed() : cscErrors.invalidOtp();
  }
  ctx.lock.recordSuccess(credentialId);
  ctx.totp.accept(credentialId, otp.step);
}
