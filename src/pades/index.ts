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
export {
  verifySealedPdf,
  SUBFILTER_ETSI_RFC3161,
  type PadesLevel,
  type SignatureCheck,
  type TimestampReport,
  type VerifySealedPdfOptions,
} from './verify-sealed-pdf';
export { verifyTimestampToken, type TimestampCheck, type VerifyTimestampOptions } from './verify-timestamp';
export { buildCertPath, type CertPath } from './cert-path';
export { RevocationIndex, type CertificateRevocation, type RevocationData } from './revocation-coverage';
export {
  readSignerInfoParts,
  OID_SIGNATURE_TIMESTAMP_TOKEN,
  type SignerInfoParts,
} from './signer-info-parts';
