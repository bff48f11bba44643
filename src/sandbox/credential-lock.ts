// Lockout after repeated failed credential authorisations (CSC: "the RSSP MAY lock the credential"):
// N consecutive failures lock a credential for a while, during which even correct factors are refused.
// A success resets the count; the lock lifts by itself. In memory only: a restart unlocks.
import { cscErrors } from './csc-errors';

interface LockState {
  failures: number;
  lockedUntil: number;
}

export class CredentialLock {
  private readonly states = new Map<string, LockState>();

  constructor(
    private readonly lockAfterFailures: number,
    private readonly lockMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws the "locked" refusal while the credential is locked. */
  assertUnlocked(credentialId: string): void {
    const state = this.states.get(credentialId);
    if (state === undefined || state.lockedUntil === 0) return;
    const left = state.lockedUntil - this.now();
    if (left > 0) throw cscErrors.credentialLocked(Math.ceil(left / 1000));
    this.states.delete(credentialId);
  }

  /** Records a failure; returns true when this failure locked the credential. */
  recordFailure(credentialId: string): boolean {
    const state = this.states.get(credentialId) ?? { failures: 0, lockedUntil: 0 };
    state.failures += 1;
    const locks = state.failures >= this.lockAfterFailures;
    if (locks) state.lockedUntil = this.now() + this.lockMs;
    this.states.set(credentialId, state);
    return locks;
  }

  recordSuccess(credentialId: string): void {
    this.states.delete(credentialId);
  }
}
