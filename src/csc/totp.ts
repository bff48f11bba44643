// TOTP codes for credentials whose OTP the application holds as a secret (RFC 6238, via otplib).
// The secret is used for one computation and not kept.
import { createGuardrails, generateSync } from 'otplib';

// Providers hand out 80-bit secrets (Google Authenticator's usual size); otplib's default floor is 128.
const guardrails = createGuardrails({ MIN_SECRET_BYTES: 10 });

export function totpCode(
  secret: string,
  options: { digits?: number; period?: number; now?: number } = {},
): string {
  return generateSync({
    secret: secret.replace(/[\s-]/g, '').toUpperCase(),
    digits: options.digits ?? 6,
    period: options.period ?? 30,
    epoch: Math.floor((options.now ?? Date.now()) / 1000),
    guardrails,
  });
}
