// The export part's one error type: file-level failures (unreadable file, wrong encoding, missing
// column, malformed CSV). Row-level problems are never thrown; they become rejected rows.
import { SealerError } from '../common/errors';

export class ExportError extends SealerError {
  readonly file: string;
  readonly line?: number;
  /** The (first) column header concerned, when the failure is about a column. */
  readonly column?: string;

  constructor(message: string, details: { file: string; line?: number; column?: string; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = details.file;
    if (details.line !== undefined) this.line = details.line;
    if (details.column !== undefined) this.column = details.column;
  }
}
