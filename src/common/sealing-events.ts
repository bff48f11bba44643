// What the sealing parts report as they work, for metrics and run records: the parts call an optional
// observer and never know who listens (ops turns these into Prometheus metrics, queue into per-run counts).

export type SealingEvent =
  /** one signatures/signHash call; `runs` counts the call's hashes per run (a batch may mix runs) */
  | {
      type: 'signHash';
      tenant: string;
      credentialId: string;
      hashes: number;
      ms: number;
      ok: boolean;
      runs: Record<string, number>;
    }
  /** one credentials/authorize (or credential-token grant) for `numSignatures`, on behalf of `runs` */
  | { type: 'authorize'; tenant: string; credentialId: string; numSignatures: number; runs: string[] }
  /** signatures an authorisation covered that will never be used (expired, retired, closed) */
  | { type: 'signaturesUnused'; tenant: string; credentialId: string; count: number }
  /** one RFC 3161 request (own TSA or the provider's signatures/timestamp) */
  | { type: 'timestamp'; tenant: string; source: 'tsa' | 'provider'; ms: number; ok: boolean }
  | {
      type: 'sealed';
      tenant: string;
      job: string;
      runId: string;
      level: string;
      ms: number;
      /** where the invoice's time went (absent for a delivery completed without sealing again) */
      stages?: SealStages;
    }
  | { type: 'failed'; tenant: string; job: string; runId: string; kind: string };

/**
 * Wall-clock milliseconds one sealed invoice spent in each step (for the benchmark's breakdown). Steps of
 * concurrent invoices overlap, so these are latencies, not CPU.
 */
export interface SealStages {
  /** from the job's enqueueing to its processing start (the backlog ahead of it, retries' backoff) */
  queueMs: number;
  /** the prepare task, thread hop included */
  prepareMs: number;
  /** waiting for the batched signHash answer (batch fill, authorisation, the call) */
  signMs: number;
  /** CMS, embedding, level data, verify-before-write */
  finishMs: number;
  /** sealed file, manifest row, audit entry, sealed index, archive row */
  deliverMs: number;
  /** the run record's counts (Redis) */
  recordMs: number;
}

export type SealingObserver = (event: SealingEvent) => void;

/** Calls every observer given; one that throws is not allowed to break sealing. */
export function fanOut(...observers: (SealingObserver | undefined)[]): SealingObserver {
  const list = observers.filter((o): o is SealingObserver => o !== undefined);
  return (event) => {
    for (const o of list) {
      try {
        o(event);
      } catch {
        // an observer's bug must not fail an invoice
      }
    }
  };
}
