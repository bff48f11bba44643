// What the SAD manager needs from outside its process to authorise a credential safely when several
// worker processes share it: one authorisation at a time (a lease), TOTP time steps that are never
// used twice, and a latch that stops everyone once the provider refused the factors. The Redis
// implementation lives in src/custody; the in-memory one here covers a single process and tests.

/** Why a credential was stopped: the provider's refusal of our factors, never a secret. */
export interface CredentialLatch {
  /** e.g. `HTTP 400 invalid_pin: The PIN is invalid` */
  reason: string;
  status?: number;
  error?: string;
  errorDescription?: string;
  /** When it was set (ms since the Unix epoch). */
  at: number;
}

/** The answer to a step claim: claimed, or the latest step some process already used (>= the one asked). */
export type StepClaim = { claimed: true } | { claimed: false; lastUsed: number };

/** Cross-process coordination of one credential's authorisations (see SadManagerOptions.guard). */
export interface AuthorisationGuard {
  /**
   * Runs `work` while holding the credential's authorisation lease: no other holder of a guard for the
   * same credential runs its own `work` meanwhile. Released when `work` settles.
   */
  withLease<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Claims TOTP time step `step` atomically: claimed only when no step >= `step` was claimed before.
   * `periodSec` lets the store forget the claim once no clock can still be in that step.
   */
  claimStep(step: number, periodSec: number): Promise<StepClaim>;
  /** The latch set by any process, if any. */
  latched(): Promise<CredentialLatch | undefined>;
  /** Stops every process from authorising this credential until the latch is cleared. */
  latch(latch: CredentialLatch): Promise<void>;
  /** New factors, a new approval or a retry by ops: authorising may go on. */
  clearLatch(): Promise<void>;
  /**
   * Tells the other processes of this credential how many authorised signatures this process holds
   * and invoices it has in hand (`own`), and answers how many they hold and have, so a demand shared by all is not authorised once per
   * process. Optional: without it, a process counts only its own.
   */
  shareInHand?(own: number): Promise<InHandElsewhere>;
}

/** What the other processes of a credential hold (see AuthorisationGuard.shareInHand). */
export interface InHandElsewhere {
  /** signatures authorised and invoices in hand, all of them together */
  signatures: number;
  /** how many of them hold any */
  processes: number;
}

/**
 * The guard of one process: a promise-chain lease, the last step in a variable, the latch in memory.
 * Enough for a single worker process; several processes on one credential need the Redis guard.
 */
export class InMemoryAuthorisationGuard implements AuthorisationGuard {
  private tail: Promise<unknown> = Promise.resolve();
  private lastStep = -Infinity;
  private current?: CredentialLatch;

  async withLease<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }

  async claimStep(step: number): Promise<StepClaim> {
    if (step > this.lastStep) {
      this.lastStep = step;
      return { claimed: true };
    }
    return { claimed: false, lastUsed: this.lastStep };
  }

  async latched(): Promise<CredentialLatch | undefined> {
    return this.current;
  }

  async latch(latch: CredentialLatch): Promise<void> {
    this.current = latch;
  }

  async clearLatch(): Promise<void> {
    this.current = undefined;
  }
}
