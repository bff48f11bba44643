// The sandbox's own error type for failures outside the HTTP protocol (provisioning, bad options,
// unreadable dataDir). Protocol refusals are CscProtocolError (csc-errors.ts) and become HTTP bodies.
import { SealerError } from '../common/errors';

export class SandboxError extends SealerError {}
