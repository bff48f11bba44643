import { SealerError } from '../common/errors';

/** A job definition or tenant profile is invalid or cannot be resolved; the message names file and field. */
export class JobConfigError extends SealerError {}
