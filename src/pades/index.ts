// Public face of the pades part: CAdES signed attributes and detached CMS SignedData built from parts
// encoded once per credential, ECDSA signature normalisation, RFC 3161 signature timestamps (B-T),
// and verification of CMS and sealed PDFs.
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
  type CmsTimestamp,
  type VerifyCmsOptions,
} from './verify-cms';
export { TimestampError, type TimestampErrorKind } from './timestamp-error';
export { buildTimeStampReq, newNonce, readTimeStampResp, type TimeStampReqInput } from './timestamp-request';
export {
  checkTimestampToken,
  readTimestampToken,
  type CheckTimestampOptions,
  type TimestampSource,
  type TimestampToken,
} from './timestamp-token';
export { Rfc3161Client, type Rfc3161ClientOptions, type Rfc3161ClientStats } from './rfc3161-client';
export { verifyCertificatePath } from './certificate-path';
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
