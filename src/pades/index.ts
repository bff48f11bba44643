// Public face of the pades part: CAdES signed attributes and detached CMS SignedData built from parts
// encoded once per credential, ECDSA signature normalisation, verification of CMS and sealed PDFs, and
// the chains and checked revocation data (OCSP, CRL) of PAdES B-LT.
export { PadesError } from './pades-error';
export { CmsTemplate, digestToSign, type SignatureAlgorithm } from './cms-template';
export { ecdsaSignatureToDer, isDerEcdsaSignature } from './ecdsa-signature';
export {
  verifyCms,
  inspectCms,
  type CmsCheck,
  type CmsInspection,
  type VerifyCmsOptions,
} from './verify-cms';
export { verifySealedPdf, type SignatureCheck, type VerifySealedPdfOptions } from './verify-sealed-pdf';
export { buildChain } from './chain';
export {
  ChainError,
  RevocationError,
  CertificateUnusableError,
  type UnusableReason,
} from './revocation-errors';
export {
  RevocationFetcher,
  type RevocationEvidence,
  type RevocationFetcherOptions,
  type RevocationStats,
  type RevocationStatus,
} from './revocation';
export {
  collectValidationData,
  assertUsable,
  type ValidationData,
  type CollectOptions,
} from './validation-data';
