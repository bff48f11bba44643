import { SealerError } from '../common/errors';

/**
 * The credential is authorised only by a tenant's approval, and none is usable now (none parked, spent
 * or expired). Not a failure: the invoice waits until an approver approves more signatures.
 */
export class ApprovalNeededError extends SealerError {
  constructor(
    readonly tenant: string,
    readonly credentialId: string,
    readonly reason: 'none' | 'spent' | 'expired',
  ) {
    const said = {
      none: 'no approval parked',
      spent: 'the approval is spent',
      expired: 'the approval expired',
    };
    super(`tenant ${tenant}, credential ${credentialId}: awaiting approval (${said[reason]})`);
  }
}
