// Public face of the seal part: one document's prepare → sign → finish behind a narrow signer seam
// (sealDocument, RawSigner); preparing an invoice in a thread pool (an update with a placeholder,
// the hash to sign) and finishing it at its PAdES level (CMS, timestamps, validation data, document
// timestamp, verify-before-return), and the provider's TSA as a timestamp source. Uses pdf and pades; knows nothing of queues, outbox files or the CSC protocol.
export { SealError } from './seal-error';
export {
  atLeast,
  LevelFinisher,
  type FinishedSeal,
  type LevelFinisherOptions,
  type PdfUpdates,
  type SealLevel,
} from './level-finisher';
export type { PreparedSeal, SealedUpdate } from './prepared-seal';
export {
  AwaitingApproval,
  PreparedHashChanged,
  sealDocument,
  SealStepError,
  type PrepareRunner,
  type RawSigner,
  type SealDocumentInput,
  type SealDocumentResult,
  type SealFinisher,
  type SealStep,
} from './seal-document';
export {
  DEFAULT_PREPARE_LIMITS,
  MIN_HEAP_MB,
  PrepareConfigError,
  PrepareError,
  PreparePool,
  SourceChangedError,
  TRANSIENT_IO_CODES,
  type DeadlineTimer,
  type PrepareErrorKind,
  type PrepareLimit,
  type PrepareLimits,
  type PreparePoolOptions,
  type PrepareTask,
  type PrepareTaskResult,
  type RenderSource,
} from './prepare-pool';
export {
  decodeInvoiceRecord,
  encodeInvoiceRecord,
  INVOICE_RECORD_VERSION,
  MAX_RECORD_BYTES,
  type InvoiceRecord,
  type RecordLocation,
  type RecordTemplate,
} from './invoice-record';
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
