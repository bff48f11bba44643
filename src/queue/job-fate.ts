// The one place that decides what happens to a seal job after an error: fail it now, retry it with
// BullMQ's backoff, or let it wait (for a tenant's approval, or for its job definition to be fixed).
// Every part reports a kind with its errors (CscError.kind, a prepare error's kind, ...); this maps
// kinds to fates, so a refusal is never retried and a hiccup never fails an invoice for good.
import { ApprovalNeededError, CscError } from '../csc';
import { JobConfigError } from '../jobs';
import { OutboxConflictError } from '../outbox';
import { SealerError } from '../common/errors';

/** Why a job failed or waits, as run records and `sealer runs` show it. */
export type FailureKind =
  | 'refused'
  | 'throttled'
  | 'transient'
  | 'unsealable'
  | 'config'
  | 'conflict'
  | 'approval-needed'
  | 'unknown';

export type Fate =
  | { action: 'fail'; kind: FailureKind; reason: string }
  | { action: 'retry'; kind: FailureKind; reason: string }
  | { action: 'wait'; kind: 'approval-needed' | 'config'; reason: string };

/**
 * An input that cannot be sealed as it is (unsafe invoice number, a PDF we cannot update, a source that
 * changed since it was enqueued): trying again will not help.
 */
export class UnsealableError extends SealerError {
  readonly kind = 'unsealable' as const;
}

/** The job's definition is not loaded in this worker (broken or missing file): the invoice waits. */
export class JobDefinitionUnavailable extends SealerError {
  readonly kind = 'config' as const;
}

/** An error given the invoice's context; its fate is its cause's. */
export class InvoiceError extends SealerError {}

export function withContext(err: unknown, context: string): InvoiceError {
  return new InvoiceError(`${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** A kind reported by an error from another part (e.g. the prepare pool's errors). */
function reportedKind(err: unknown): string | undefined {
  const kind = (err as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind : undefined;
}

export function fateOf(err: unknown): Fate {
  const reason = err instanceof Error ? err.message : String(err);
  if (err instanceof InvoiceError) {
    const inner = fateOf(err.cause);
    return { ...inner, reason } as Fate;
  }
  if (err instanceof ApprovalNeededError) return { action: 'wait', kind: 'approval-needed', reason };
  if (err instanceof JobDefinitionUnavailable) return { action: 'wait', kind: 'config', reason };
  if (err instanceof CscError) {
    switch (err.kind) {
      case 'refused':
        return { action: 'fail', kind: 'refused', reason };
      case 'approval-needed':
        return { action: 'wait', kind: 'approval-needed', reason };
      default:
        return { action: 'retry', kind: err.kind, reason };
    }
  }
  if (err instanceof JobConfigError) return { action: 'fail', kind: 'config', reason };
  if (err instanceof OutboxConflictError) return { action: 'fail', kind: 'conflict', reason };
  const kind = reportedKind(err);
  if (kind === 'unsealable') return { action: 'fail', kind: 'unsealable', reason };
  if (kind === 'transient') return { action: 'retry', kind: 'transient', reason };
  // Anything not understood (a Redis hiccup, a full disk, a bug) is retried within the job's attempts:
  // failing it for good could lose an invoice that the next attempt would seal.
  return { action: 'retry', kind: 'unknown', reason };
}
