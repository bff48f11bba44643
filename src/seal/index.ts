// Public face of the seal part: finishing a prepared invoice at its PAdES level (CMS, timestamps,
// validation data, document timestamp, verify-before-return), and the provider's TSA as a timestamp
// source. Uses pdf and pades; knows nothing of queues, outbox files or the CSC protocol.
export { SealError } from './seal-error';
export {
  atLeast,
  LevelFinisher,
  type FinishedSeal,
  type LevelFinisherOptions,
  type PdfUpdates,
  type PreparedSeal,
  type SealLevel,
} from './level-finisher';
export { ProviderTimestampSource, type ProviderTimestampSourceOptions } from './provider-timestamp-source';
export {
  ArchiveRenewer,
  assessRenewal,
  parseMargin,
  RenewalRefusedError,
  type ArchiveRenewerOptions,
  type AssessOptions,
  type RenewalAction,
  type RenewalDecision,
  type RenewedPdf,
} from './archive-renewal';
