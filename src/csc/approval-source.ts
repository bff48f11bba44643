// The seam through which a SAD manager takes signatures a tenant's approver granted beforehand. csc
// defines it and never knows where approvals are kept: custody's ParkedApprovals (Redis, encrypted)
// implements it, and the queue wires one per credential.

/** A SAD (approval at a prompt) or a credential-scope token (approval on the provider's page). */
export type ApprovalKind = 'sad' | 'credential-token';

/** What one draw from an approval hands the SAD manager. */
export interface Drawn {
  kind: ApprovalKind;
  value: string;
  /** signatures granted to this draw: at most what was asked */
  count: number;
  expiresAt: number;
  fingerprint: string;
  /** signatures left on the approval after this draw */
  remaining: number;
  /** SCAL2: the hashes this draw may sign (a subset of those asked for) */
  hashes?: Buffer[];
}

/** Draws signatures from an approval a tenant granted beforehand. */
export interface ApprovalSource {
  /** Up to `wanted` signatures; throws ApprovalNeededError when none can be had now. */
  draw(wanted: number, marginMs: number): Promise<Drawn>;
  /** SCAL2: the signatures of those `hashes` the approval binds; ApprovalNeededError when none. */
  drawBound(hashes: readonly Buffer[], marginMs: number): Promise<Drawn>;
  /** The provider refused the approval with this fingerprint: hand it out no more. */
  retire(fingerprint: string): Promise<void>;
}
