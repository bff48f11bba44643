import { SealerError } from '../common/errors';

/** A producer failure: an export (or its run) that cannot be read or enqueued as it is. */
export class ProducerError extends SealerError {}
