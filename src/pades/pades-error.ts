// The pades part's one error type: unusable certificates, malformed digests or signatures handed to
// the CMS builder. Verification never throws it; it reports problems instead.
import { SealerError } from '../common/errors';

export class PadesError extends SealerError {}
