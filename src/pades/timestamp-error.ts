// Why a signature timestamp could not be had. The kind steers the invoice's fate: a TSA that said no
// ('refused') will say no again; one that could not be reached ('transient') or answered with
// something that fails the checks ('invalid', a TSA fault) may do better on a later try. None of
// them falls back to B-B: the caller fails the invoice with this message.
import { PadesError } from './pades-error';

export type TimestampErrorKind = 'refused' | 'transient' | 'invalid';

export class TimestampError extends PadesError {
  constructor(
    readonly kind: TimestampErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
