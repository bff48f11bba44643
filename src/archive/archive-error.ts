// The archive's errors: a storage or entry problem (ArchiveError) and a search whose values cannot be
// answered (ArchiveQueryError), which names the field so that a page or a CLI can point at it.
import { SealerError } from '../common/errors';

export class ArchiveError extends SealerError {}

export class ArchiveQueryError extends ArchiveError {
  /** the ArchiveQuery field at fault, e.g. `issueDateFrom` or `limit` */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`archive search: ${field} ${message}`);
    this.field = field;
  }
}
