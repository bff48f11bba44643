// Public face of the custody part: who may authorise a credential. The factor vault (provider-held
// factors) and what `sealer factors` does with it; parked approvals and the approval flows (provider's
// page, prompt) behind `sealer approve`; the Redis AuthorisationGuard (lease, TOTP steps, latch) that
// the queue wires into each SAD manager, and the functions ops' commands call to see and clear latches.
// It neither seals nor queues; csc, jobs and outbox are below it, and none of them imports it.
export { CustodyError } from './custody-error';
export { type CredentialRef } from './credential-keys';
export {
  clearCredentialLatch,
  listCredentialLatches,
  readLatch,
  type StoredLatch,
} from './credential-latches';
export {
  RedisAuthorisationGuard,
  RedisAuthorisationGuards,
  type RedisAuthorisationGuardOptions,
} from './redis-authorisation-guard';
export {
  FactorVault,
  FactorVaultError,
  factorFilePath,
  kekIdOf,
  keyFactorsOf,
  listFactorFiles,
  loadKek,
  openFactorVault,
  parseKek,
  rotateKey,
  type FactorFileInfo,
  type FactorsToStore,
  type StoredFactors,
  type TotpSettings,
} from './factor-vault';
export {
  ParkedApprovals,
  secretFingerprint,
  type ApprovalStatus,
  type ParkApproval,
  type PendingHash,
} from './parked-approvals';
export {
  approvalJobOf,
  approve,
  approveAtPrompt,
  approveOnProviderPage,
  type ApprovalResult,
  type ApproveOptions,
  type ApproveRequest,
} from './approve';
export { serviceAuthOf } from './service-auth-of';
export { approvalSourceFor, checkCustody, keyFactorsFor } from './credential-custody';
export {
  listFactorVaults,
  rotateFactorKey,
  storeFactors,
  type CustodyReport,
  type RotateFactorKeyOptions,
  type StoreFactorsOptions,
} from './delegated-factors';
