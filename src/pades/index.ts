// Public face of the pades part: CAdES signed attributes and detached CMS SignedData built from parts
// encoded once per credential, ECDSA signature normalisation, and verification of CMS and sealed PDFs.
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
