// TOTP checks for credentials/authorize: RFC 6238 codes (6 digits, HMAC-SHA-1, the sandbox's period,
// one step either side, and never less than 10 s late: a real provider's 30 s step tolerates 30 s of delay,
// and a test's 1 s step must not turn a loaded machine's scheduling delays into refusals), and replay
// refusal as section 5.2 asks: per credential the last accepted time
// step is remembered, and a code of that step or an earlier one is refused. In memory: a restart forgets.
import { verifySync } from 'otplib';

/** Least tolerance (s) for a code computed before the request reached the sandbox. */
const MIN_TOLERANCE_SEC = 10;

export type TotpVerdict = { ok: true; step: number } | { ok: false; replayed: boolean };

export class TotpVerifier {
  private readonly lastAccepted = new Map<string, number>();

  constructor(
    readonly periodSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `token` is a valid, unused code of the credential; accept() records a success. */
  check(credentialId: string, secret: string, token: string): TotpVerdict {
    if (!/^\d{6}$/.test(token)) return { ok: false, replayed: false };
    let step: number;
    try {
      const result = verifySync({
        secret,
        token,
        period: this.periodSec,
        epoch: Math.floor(this.now() / 1000),
        // [past, future]: a code may be late, never from further ahead than one step.
        epochTolerance: [Math.max(this.periodSec, MIN_TOLERANCE_SEC), this.periodSec],
      });
      if (!result.valid || !('timeStep' in result)) return { ok: false, replayed: false };
      step = result.timeStep;
    } catch {
      return { ok: false, replayed: false };
    }
    const last = this.lastAccepted.get(credentialId);
    if (last !== undefined && step <= last) return { ok: false, replayed: true };
    return { ok: true, step };
  }

  /** Called only once the whole authorisation succeeded: a refused request spends no step. */
  accept(credentialId: string, step: number): void {
    this.lastAccepted.set(credentialId, Math.max(step, this.lastAccepted.get(credentialId) ?? step));
  }
}
