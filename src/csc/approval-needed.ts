import { SealerError } from '../common/errors';

/**
 * The credential is authorised only by a tenant's approval, and none is usable now (none parked, spent
 * or expired). Not a failure: the invoice waits until an approver approves more signatures.
 */
export class ApprovalNeededError extends SealerError {
  constructor(
    readonly tenant: string,
    readonly credentialId: string,
    readonly reason: 'none' | 'spent' | 'expired' | 'unbound',
  ) {
    const said = {
      none: 'no approval parked',
      spent: 'the approval is spent',
      expired: 'the approval expired',
      unbound: "the approval does not cover this document's hash (SCAL2)",
    };
    super(`tenant ${tenant}, credential ${credentialId}: awaiting approval (${said[reason]})`);
  }
}

/**
 * SCAL2 under an approval: the document's hash must be approved before it can be sealed. Carries the
 * hash and the signing time it was prepared with, so that the worker can prepare it again identically.
 */
export class AwaitingBoundApproval extends ApprovalNeededError {
  constructor(
    cause: ApprovalNeededError,
    readonly hash: Buffer,
    readonly signingTime: string,
  ) {
    super(cause.tenant, cause.credentialId, cause.reason);
  }
}
