// Verifies a detached CMS SignedData the way the finish step and validators need: message digest over
// the signed bytes, signature over the DER signed attributes with the signer certificate's key, and
// (PAdES profile) the CAdES attribute rules. Walks DER directly and caches keys by certificate, so
// checking a freshly sealed invoice costs little more than the public-key operation itself.
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { bytesOf, compareDer, contentOf, decodeOid, readChildren, readTlv, Tlv, TAG } from './der';
import { DIGEST_BY_OID, OID, SIGNATURE_KEY_TYPE_BY_OID } from './oids';
import { checkTimestampToken, readTimestampToken } from './timestamp-token';
import { parsedCert } from './parsed-certificate';

export interface VerifyCmsOptions {
  /** The signer certificate must be exactly this one (the credential's). */
  expectedCertificateDer?: Buffer;
  /**
   * 'pades' (default) also demands what PAdES baseline / CAdES-BES require of signed attributes:
   * signing-certificate(-v2) present and matching, no signing-time. 'cms' checks plain CMS rules only.
   */
  profile?: 'pades' | 'cms';
  /** A signature timestamp (B-T) must be present. */
  requireTimestamp?: boolean;
  /**
   * When given, a signature timestamp is checked in full (checkTimestampToken: signature, TSA EKU,
   * chain to one of these roots at genTime); otherwise only that it stamps this signature.
   */
  timestampTrustedRootsDer?: Buffer[];
}

/** The signature timestamp a CMS carries (unsigned attribute id-aa-signatureTimeStampToken). */
export interface CmsTimestamp {
  genTime: Date;
  /** Subject of the TSA certificate, when the token carries it. */
  tsaSubject?: string;
  tokenDer: Buffer;
}

export interface CmsCheck {
  valid: boolean;
  problems: string[];
  signerCertificateDer?: Buffer;
}

export interface CmsInspection extends CmsCheck {
  /** Every certificate the CMS carries, in its order. */
  certificatesDer: Buffer[];
  timestamp?: CmsTimestamp;
}

function oidAt(buf: Buffer, t: Tlv | undefined): string {
  if (!t || t.tag !== TAG.OID) throw new Error('expected an OBJECT IDENTIFIER');
  return decodeOid(contentOf(buf, t));
}

/** The algorithm OID of an AlgorithmIdentifier SEQUENCE. */
function algorithmOid(buf: Buffer, t: Tlv | undefined): string {
  if (!t || t.tag !== TAG.SEQUENCE) throw new Error('expected an AlgorithmIdentifier');
  return oidAt(buf, readChildren(buf, t)[0]);
}

interface SignedAttribute {
  type: string;
  der: Buffer;
  values: Tlv[];
}

function checkSignedAttributes(cms: Buffer, attrsTlv: Tlv, problems: string[]): Map<string, SignedAttribute> {
  const attrs = new Map<string, SignedAttribute>();
  let previous: Buffer | undefined;
  for (const attr of readChildren(cms, attrsTlv)) {
    const [typeTlv, valuesTlv] = readChildren(cms, attr);
    const type = oidAt(cms, typeTlv);
    const der = bytesOf(cms, attr);
    if (previous && compareDer(previous, der) > 0) {
      // OpenSSL 3.0 and poppler/NSS verify the bytes as received, but validators that re-encode as DER
      // (BouncyCastle-based ones such as EU DSS) compute a different hash and reject the signature.
      problems.push('signed attributes are not in DER SET order');
    }
    previous = der;
    if (attrs.has(type)) problems.push(`signed attribute ${type} appears more than once`);
    if (!valuesTlv || valuesTlv.tag !== TAG.SET) throw new Error(`attribute ${type} has no SET of values`);
    attrs.set(type, { type, der, values: readChildren(cms, valuesTlv) });
  }
  return attrs;
}

/** Full inspection, also returning the embedded certificates (verifySealedPdf builds chains from them). */
export function inspectCms(
  cmsDer: Buffer,
  signedContent: Buffer | SignedDigest,
  opts: VerifyCmsOptions = {},
): CmsInspection {
  const problems: string[] = [];
  const profile = opts.profile ?? 'pades';
  const cms = Buffer.from(cmsDer.buffer, cmsDer.byteOffset, cmsDer.byteLength);
  const certificatesDer: Buffer[] = [];
  let signerCertificateDer: Buffer | undefined;
  let timestamp: CmsTimestamp | undefined;
  try {
    const contentInfo = readTlv(cms, 0);
    if (contentInfo.end !== cms.length) problems.push('CMS has trailing bytes after the ContentInfo');
    const [ciType, ciContent] = readChildren(cms, contentInfo);
    if (oidAt(cms, ciType) !== OID.signedData) throw new Error('ContentInfo is not SignedData');
    if (!ciContent || ciContent.tag !== TAG.CONTEXT_0) throw new Error('ContentInfo has no [0] content');
    const signedData = readChildren(cms, ciContent)[0];
    if (!signedData || signedData.tag !== TAG.SEQUENCE) throw new Error('SignedData is not a SEQUENCE');
    const sd = readChildren(cms, signedData);

    const encap = readChildren(cms, sd[2]!);
    const eContentType = oidAt(cms, encap[0]);
    if (encap.length > 1) problems.push('CMS is not detached: it carries its own eContent');
    let i = 3;
    if (sd[i]?.tag === TAG.CONTEXT_0) {
      for (const c of readChildren(cms, sd[i]!))
        if (c.tag === TAG.SEQUENCE) certificatesDer.push(bytesOf(cms, c));
      i++;
    }
    if (sd[i]?.tag === TAG.CONTEXT_1) i++; // CRLs: not needed for B-B
    const signerInfosTlv = sd[i];
    if (!signerInfosTlv || signerInfosTlv.tag !== TAG.SET) {
      throw new Error('SignedData has no signerInfos SET');
    }
    const signerInfos = readChildren(cms, signerInfosTlv);
    if (signerInfos.length !== 1) {
      throw new Error(`expected exactly one SignerInfo, found ${signerInfos.length}`);
    }

    const si = readChildren(cms, signerInfos[0]!);
    const [, sidTlv, digestAlgTlv] = si;
    let k = 3;
    const signedAttrsTlv = si[k]?.tag === TAG.CONTEXT_0 ? si[k++] : undefined;
    const sigAlgOid = algorithmOid(cms, si[k++]);
    const signatureTlv = si[k];
    if (!signatureTlv || signatureTlv.tag !== TAG.OCTET_STRING) {
      throw new Error('SignerInfo has no signature');
    }
    const signature = contentOf(cms, signatureTlv);
    const unsignedAttrsTlv = si[k + 1]?.tag === TAG.CONTEXT_1 ? si[k + 1] : undefined;
    if (unsignedAttrsTlv)
      timestamp = checkSignatureTimestamp(cms, unsignedAttrsTlv, signature, opts, problems);
    if (opts.requireTimestamp && !timestamp) problems.push('CMS carries no signature timestamp (B-T)');

    const digestOid = algorithmOid(cms, digestAlgTlv);
    const hashName = DIGEST_BY_OID[digestOid];
    if (!hashName) throw new Error(`digest algorithm ${digestOid} is not supported (SHA-256/384/512 are)`);
    const keyType = SIGNATURE_KEY_TYPE_BY_OID[sigAlgOid];
    if (!keyType) throw new Error(`signature algorithm ${sigAlgOid} is not supported`);

    // Signer certificate by issuer and serial number.
    if (!sidTlv || sidTlv.tag !== TAG.SEQUENCE) {
      throw new Error('SignerInfo sid is not IssuerAndSerialNumber');
    }
    const sid = contentOf(cms, sidTlv);
    const signer = certificatesDer.find((c) => parsedCert(c).issuerAndSerial.equals(sid));
    if (!signer) throw new Error('the signer certificate is not among the CMS certificates');
    signerCertificateDer = signer;
    const cert = parsedCert(signer);
    if (opts.expectedCertificateDer && !signer.equals(opts.expectedCertificateDer)) {
      problems.push(
        `signer certificate (serial ${cert.x509.serialNumber}) is not the expected credential certificate`,
      );
    }
    if (cert.key.asymmetricKeyType !== keyType) {
      problems.push(
        `signature algorithm ${sigAlgOid} does not match the certificate's ${cert.key.asymmetricKeyType} key`,
      );
    }

    if (!signedAttrsTlv) throw new Error('SignerInfo has no signed attributes (CAdES requires them)');
    const attrs = checkSignedAttributes(cms, signedAttrsTlv, problems);
    const contentType = attrs.get(OID.contentType);
    if (!contentType || oidAt(cms, contentType.values[0]) !== eContentType) {
      problems.push(
        'content-type signed attribute is missing or does not match the encapsulated content type',
      );
    }
    const messageDigest = attrs.get(OID.messageDigest);
    const md = messageDigest?.values[0];
    if (!md || md.tag !== TAG.OCTET_STRING) {
      problems.push('message-digest signed attribute is missing');
    } else if ('digest' in signedContent && signedContent.algorithm !== hashName) {
      problems.push(
        `the CMS digests with ${hashName}, the signed bytes were hashed with ${signedContent.algorithm}`,
      );
    } else if (
      !contentOf(cms, md).equals(
        'digest' in signedContent
          ? signedContent.digest
          : createHash(hashName).update(signedContent).digest(),
      )
    ) {
      problems.push('message digest does not match the signed bytes (document altered after sealing?)');
    }
    if (profile === 'pades') checkPadesAttributes(cms, attrs, signer, problems);

    // The signature covers the attributes re-tagged as the universal SET they are.
    const signedAttrs = Buffer.from(bytesOf(cms, signedAttrsTlv));
    signedAttrs[0] = TAG.SET;
    if (!cryptoVerify(hashName, signedAttrs, cert.key, signature)) {
      problems.push('signature over the signed attributes does not verify with the signer certificate key');
    }
  } catch (err) {
    problems.push(`CMS could not be checked: ${(err as Error).message}`);
  }
  return {
    valid: problems.length === 0,
    problems,
    signerCertificateDer,
    certificatesDer,
    ...(timestamp ? { timestamp } : {}),
  };
}

/** Reads the signature-time-stamp-token among the unsigned attributes, if any, and checks it. */
function checkSignatureTimestamp(
  cms: Buffer,
  unsignedAttrsTlv: Tlv,
  signature: Buffer,
  opts: VerifyCmsOptions,
  problems: string[],
): CmsTimestamp | undefined {
  const tokens: Buffer[] = [];
  for (const attr of readChildren(cms, unsignedAttrsTlv)) {
    const [typeTlv, valuesTlv] = readChildren(cms, attr);
    if (oidAt(cms, typeTlv) !== OID.signatureTimeStampToken) continue;
    if (!valuesTlv || valuesTlv.tag !== TAG.SET) throw new Error('signature timestamp attribute has no SET');
    for (const v of readChildren(cms, valuesTlv)) tokens.push(Buffer.from(bytesOf(cms, v)));
  }
  if (tokens.length === 0) return undefined;
  if (tokens.length > 1)
    problems.push(`CMS carries ${tokens.length} signature timestamps; only the first is checked`);
  const tokenDer = tokens[0]!;
  const digest = createHash('sha256').update(signature).digest();
  try {
    const facts = readTimestampToken(tokenDer);
    if (facts.imprintAlgorithm !== OID.sha256 || !facts.imprintDigest.equals(digest)) {
      problems.push('signature timestamp does not stamp this signature value');
    } else if (opts.timestampTrustedRootsDer) {
      checkTimestampToken(tokenDer, { digest, trustedRootsDer: opts.timestampTrustedRootsDer });
    }
    return {
      genTime: facts.genTime,
      tokenDer,
      ...(facts.tsaSubject ? { tsaSubject: facts.tsaSubject } : {}),
    };
  } catch (err) {
    problems.push(`signature timestamp: ${(err as Error).message}`);
    return undefined;
  }
}

function checkPadesAttributes(
  cms: Buffer,
  attrs: Map<string, SignedAttribute>,
  signer: Buffer,
  problems: string[],
): void {
  if (attrs.has(OID.signingTime)) {
    problems.push('signing-time signed attribute present (PAdES uses /M instead)');
  }
  const v2 = attrs.get(OID.signingCertificateV2);
  if (!v2) {
    if (!attrs.has(OID.signingCertificate)) {
      problems.push('signing-certificate-v2 signed attribute is missing');
    }
    return;
  }
  // SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, ... }; the first names the signer.
  const certs = readChildren(cms, readChildren(cms, v2.values[0]!)[0]!);
  const first = readChildren(cms, certs[0]!);
  let hashName = 'sha256';
  let hashTlv = first[0]!;
  if (hashTlv.tag === TAG.SEQUENCE) {
    const alg = algorithmOid(cms, hashTlv);
    hashName = DIGEST_BY_OID[alg] ?? '';
    hashTlv = first[1]!;
    if (!hashName) {
      problems.push(`signing-certificate-v2 uses unsupported hash ${alg}`);
      return;
    }
  }
  if (!contentOf(cms, hashTlv).equals(createHash(hashName).update(signer).digest())) {
    problems.push('signing-certificate-v2 does not identify the signer certificate');
  }
}

/** The signed bytes' digest, taken by a caller that hashed them in pieces (input, then update). */
export interface SignedDigest {
  digest: Buffer;
  algorithm: 'sha256' | 'sha384' | 'sha512';
}

/** `signedContent` is the signed bytes, or their digest (which must be of the CMS's digest algorithm). */
export function verifyCms(
  cmsDer: Buffer,
  signedContent: Buffer | SignedDigest,
  opts: VerifyCmsOptions = {},
): CmsCheck {
  const { valid, problems, signerCertificateDer } = inspectCms(cmsDer, signedContent, opts);
  return signerCertificateDer ? { valid, problems, signerCertificateDer } : { valid, problems };
}
