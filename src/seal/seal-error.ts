import { SealerError } from '../common/errors';

/** A seal that could not be finished as its level requires (the CMS did not verify, a source missing). */
export class SealError extends SealerError {}
