// CustodyError: the one error type of the custody part (authorisation leases, latches). Not a provider
// refusal, so a job that meets one is retried rather than failed.
import { SealerError } from '../common/errors';

export class CustodyError extends SealerError {}
