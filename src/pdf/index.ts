// Public face of the pdf part: prepare a placeholder in an incremental update (optionally with a
// visible company seal), embed a CMS into it, add a DSS and document timestamps (B-LT, B-LTA) as
// further updates, read signatures back, and render sample invoices. Knows nothing of CMS internals.
export { PdfError } from './pdf-error';
export {
  preparePdf,
  prepareSealUpdate,
  digestByteRange,
  DEFAULT_SIGNATURE_BYTES,
  SUBFILTER_ETSI_CADES_DETACHED,
  ENCRYPTED_INPUT_MESSAGE,
  type PlaceholderLayout,
  type PrepareOptions,
  type PreparedPdf,
  type PreparedSealUpdate,
} from './prepare';
export { DEFAULT_MAX_INFLATED_BYTES, PdfLimitError } from './inflate-limit';
export {
  buildSealAppearance,
  sealLegend,
  SEAL_RED,
  MAX_SEAL_CHARACTERS,
  MAX_SEAL_IMAGE_PIXELS,
  type SealAppearance,
  type BuiltSealAppearance,
} from './seal-appearance';
export { embedCms, embedCmsInUpdate } from './embed';
export {
  appendDss,
  readDss,
  vriKey,
  type DssContent,
  type DssOptions,
  type DssSummary,
  type DssVriEntry,
} from './dss';
export { prepareDocTimestamp, SUBFILTER_ETSI_RFC3161, type DocTimestampOptions } from './doc-timestamp';
export { extractSignatures, type EmbeddedSignature } from './extract';
export { renderSampleInvoice, type SampleInvoice } from './render-invoice';
export { renderQualifiedInvoice, formatYen, MIN_FONT_SIZE } from './render-qualified-invoice';
export type {
  InvoiceDocument,
  InvoiceDocumentLine,
  InvoiceDocumentRate,
  InvoiceTemplate,
} from './invoice-document';
export {
  readRevisions,
  revisionEnds,
  type DocMdpPermission,
  type DssSnapshot,
  type PdfRevision,
  type RevisionChange,
  type RevisionReport,
} from './revisions';
