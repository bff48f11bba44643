// Public face of the pdf part: prepare a placeholder in an incremental update, embed a CMS into it,
// read signatures back, and render sample invoices. Knows nothing of CMS internals (that is pades).
export { PdfError } from './pdf-error';
export {
  preparePdf,
  digestByteRange,
  DEFAULT_SIGNATURE_BYTES,
  SUBFILTER_ETSI_CADES_DETACHED,
  type PrepareOptions,
  type PreparedPdf,
} from './prepare';
export { DEFAULT_MAX_INFLATED_BYTES, PdfLimitError } from './inflate-limit';
export { embedCms } from './embed';
export { extractSignatures, type EmbeddedSignature } from './extract';
export { renderSampleInvoice, type SampleInvoice } from './render-invoice';
export {
  readRevisions,
  revisionEnds,
  type DocMdpPermission,
  type DssSnapshot,
  type PdfRevision,
  type RevisionChange,
  type RevisionReport,
} from './revisions';
