// Public face of the CSC part: the API client, the credential's facts, the SAD manager and the batch
// signer. Other parts import from here only; nothing in this folder knows about PDFs or queues.
export {
  CscClient,
  CscBadReplyError,
  type CscClientOptions,
  type CscApiVersion,
  type CscInfo,
  type AuthorizeRequest,
  type SignHashRequest,
} from './csc-client';
export { CscError, type CscErrorFields, normaliseErrorCode, isServiceTokenRefusal } from './csc-error';
export { parseCredentialInfo, OID, type CredentialFacts } from './credential-facts';
export { type CscServiceAuth } from './service-auth';
export { SadManager, type SadManagerOptions, type KeyFactors, type SadClock } from './sad-manager';
export { type ApprovalKind, type ApprovalSource, type Drawn } from './approval-source';
export {
  InMemoryAuthorisationGuard,
  type AuthorisationGuard,
  type CredentialLatch,
  type InHandElsewhere,
  type StepClaim,
} from './authorisation-guard';
export { Scal1Reservation, Scal2Reservation, type SadReservation } from './sad-reservation';
export { BatchSigner, type BatchSignerOptions } from './batch-signer';
export { normaliseEcdsaSignature, rawEcdsaToDer, isDerEcdsaSignature } from './ecdsa-signature';
export { totpCode, totpTimeStep, isOtpReplayRefusal, type TotpAlgorithm, type TotpOptions } from './totp';
export type { Logger } from '../common/logger';
export { ApprovalNeededError, AwaitingBoundApproval } from './approval-needed';
export {
  buildAuthorizationUrl,
  startLoopbackRedirect,
  exchangeCode,
  hashListDigest,
  newCodeVerifier,
  pkceChallenge,
  type AuthorizationUrlRequest,
  type LoopbackRedirect,
  type LoopbackRedirectOptions,
  type CodeExchangeRequest,
  type CredentialToken,
} from './authorization-code';
