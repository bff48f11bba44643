// Verifies an RFC 3161 TimeStampToken (a signature timestamp or a PAdES document timestamp): the
// imprint against the data it claims to stamp, the token's CMS signature, the TSA certificate's
// critical timeStamping EKU, and the TSA's chain to any of the trusted roots.
import { createHash, X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import { buildCertPath } from './cert-path';
import { DIGEST_BY_OID, OID } from './oids';

const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
const OID_EKU = '2.5.29.37';
const OID_KP_TIMESTAMPING = '1.3.6.1.5.5.7.3.8';

export interface TimestampCheck {
  valid: boolean;
  problems: string[];
  genTime?: Date;
  tsaSubject?: string;
  tsaCertificateDer?: Buffer;
  /** TSA certificate first; see buildCertPath. */
  tsaPathDer: Buffer[];
  /** Undefined when no roots were given. */
  chainTrusted?: boolean;
  /** Every certificate the token carries. */
  certificatesDer: Buffer[];
}

export interface VerifyTimestampOptions {
  trustedRootsDer?: Buffer[];
  /** More certificates to build the TSA path through (the DSS's). */
  extraCertificatesDer?: Buffer[];
  /** When the TSA chain must be valid; default the token's genTime. */
  at?: Date;
}

function view(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function hasCriticalTimestampingEku(cert: pkijs.Certificate): boolean {
  const ext = cert.extensions?.find((e) => e.extnID === OID_EKU);
  if (!ext?.critical) return false;
  const eku = ext.parsedValue as pkijs.ExtKeyUsage | undefined;
  return eku?.keyPurposes.includes(OID_KP_TIMESTAMPING) ?? false;
}

/** The certificate the (only) SignerInfo names by issuer and serial number. */
function signerCertificate(
  signedData: pkijs.SignedData,
  certs: pkijs.Certificate[],
): pkijs.Certificate | undefined {
  const sid = signedData.signerInfos[0]?.sid;
  if (!(sid instanceof pkijs.IssuerAndSerialNumber)) return undefined;
  return certs.find((c) => c.issuer.isEqual(sid.issuer) && c.serialNumber.isEqual(sid.serialNumber));
}

/** `stampedData` is what the imprint must be a hash of (signature value, or a ByteRange's bytes). */
export async function verifyTimestampToken(
  tokenDer: Buffer,
  stampedData: Buffer,
  opts: VerifyTimestampOptions = {},
): Promise<TimestampCheck> {
  const problems: string[] = [];
  const out: TimestampCheck = { valid: false, problems, tsaPathDer: [], certificatesDer: [] };
  try {
    const contentInfo = pkijs.ContentInfo.fromBER(view(tokenDer));
    if (contentInfo.contentType !== OID.signedData) throw new Error('token is not a CMS SignedData');
    const signedData = new pkijs.SignedData({ schema: contentInfo.content });
    if (signedData.encapContentInfo.eContentType !== OID_TST_INFO) {
      throw new Error(`token content type is ${signedData.encapContentInfo.eContentType}, not TSTInfo`);
    }
    const eContent = signedData.encapContentInfo.eContent;
    if (!eContent) throw new Error('token carries no TSTInfo');
    const tstInfo = pkijs.TSTInfo.fromBER(eContent.getValue());
    out.genTime = tstInfo.genTime;

    const hashOid = tstInfo.messageImprint.hashAlgorithm.algorithmId;
    const hashName = DIGEST_BY_OID[hashOid];
    const imprint = Buffer.from(tstInfo.messageImprint.hashedMessage.valueBlock.valueHexView);
    let imprintOk = false;
    if (!hashName) problems.push(`timestamp imprint uses unsupported hash ${hashOid}`);
    else if (!imprint.equals(createHash(hashName).update(stampedData).digest())) {
      problems.push('timestamp imprint does not match the stamped data');
    } else imprintOk = true;

    const certs = (signedData.certificates ?? []).filter(
      (c): c is pkijs.Certificate => c instanceof pkijs.Certificate,
    );
    out.certificatesDer = certs.map((c) => Buffer.from(c.toSchema().toBER()));
    const tsaCert = signerCertificate(signedData, certs);
    // pkijs checks the imprint again (it needs the stamped data for that), then the CMS signature; with
    // a wrong imprint the token is already rejected and its signature says nothing more.
    if (imprintOk && tsaCert) {
      const verified = await signedData
        .verify({ signer: 0, checkChain: false, extendedMode: true, data: view(stampedData) })
        .then((r) => r.signatureVerified === true)
        .catch((err: unknown) => {
          problems.push(`timestamp token signature does not verify: ${(err as Error).message}`);
          return true;
        });
      if (!verified) problems.push('timestamp token signature does not verify');
    }
    if (!tsaCert) {
      problems.push('the TSA certificate is not in the timestamp token');
    } else {
      const tsaDer = Buffer.from(tsaCert.toSchema().toBER());
      out.tsaCertificateDer = tsaDer;
      out.tsaSubject = new X509Certificate(tsaDer).subject.split('\n').join(', ');
      if (!hasCriticalTimestampingEku(tsaCert)) {
        problems.push('TSA certificate lacks a critical extended key usage of timeStamping');
      }
      const at = opts.at ?? tstInfo.genTime;
      const path = buildCertPath(
        tsaDer,
        [...out.certificatesDer, ...(opts.extraCertificatesDer ?? [])],
        opts.trustedRootsDer,
        at,
      );
      out.tsaPathDer = path.pathDer;
      out.chainTrusted = path.trusted;
      problems.push(...path.problems.map((p) => `TSA: ${p}`));
    }
  } catch (err) {
    problems.push(`timestamp token could not be checked: ${(err as Error).message}`);
  }
  out.valid = problems.length === 0;
  return out;
}
