// What an RFC 3161 TimeStampToken must prove before it goes into a CMS: it stamps our digest (and
// our nonce, our policy), it is signed by a TSA certificate fit for timestamping (EKU timeStamping,
// critical, RFC 3161 §2.3) that the token names in its ESS signing-certificate attribute, and that
// certificate chains to a root we trust at the token's genTime. Parsing is pkijs; the public-key
// checks are node:crypto, so the check is synchronous and a CSC-based TSA source can reuse it.
import { createHash, verify as cryptoVerify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { verifyCertificatePath } from './certificate-path';
import { bytesOf, readChildren, readTlv, tlv, TAG, type Tlv } from './der';
import { cachedCertificate } from './parsed-certificate';
import { DIGEST_BY_OID, OID, SIGNATURE_KEY_TYPE_BY_OID } from './oids';
import { TimestampError } from './timestamp-error';
import { unsignedMagnitude } from './timestamp-request';

export interface TimestampToken {
  /** The TimeStampToken: ContentInfo(SignedData) with TSTInfo, as received. */
  der: Buffer;
  genTime: Date;
  /** TSTInfo serialNumber, lowercase hex without a sign byte. */
  serialHex: string;
  policyOid: string;
  tsaCertificateDer: Buffer;
  /** Every certificate the token carries. */
  certificatesDer: Buffer[];
  /** The SHA-256 the token stamps (TSTInfo messageImprint). */
  imprintDigest: Buffer;
}

/** Where timestamps come from: an RFC 3161 TSA over HTTP, or a CSC provider's timestamp service. */
export interface TimestampSource {
  /** For errors and logs: which TSA this is (no credentials). */
  readonly description: string;
  /** A checked token over `digest`, the SHA-256 of the data to be stamped. */
  timestamp(digest: Buffer): Promise<TimestampToken>;
}

export interface CheckTimestampOptions {
  /** SHA-256 the token must stamp. */
  digest: Buffer;
  /** The nonce sent (unsigned big-endian); the token must echo it. */
  nonce?: Buffer;
  /** The policy asked for; the token must carry it. */
  policyOid?: string;
  /** Roots a TSA certificate may chain to. */
  trustedRootsDer: Buffer[];
  /** Intermediates (or the TSA certificate) when the token does not carry them. */
  extraCertsDer?: Buffer[];
  /** The local clock; a genTime later than this by more than `maxClockSkewMs` is refused. */
  now?: Date;
  /** Default 5 minutes. */
  maxClockSkewMs?: number;
}

const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;

function invalid(message: string, cause?: unknown): TimestampError {
  return new TimestampError('invalid', `timestamp token: ${message}`, cause ? { cause } : undefined);
}

function bytes(view: Uint8Array | ArrayBuffer): Buffer {
  return Buffer.from(view instanceof ArrayBuffer ? new Uint8Array(view) : view);
}

const CACHE_LIMIT = 64;
const verifiedPaths = new Map<string, { from: number; to: number }>();

function fingerprint(parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

function certDer(cert: pkijs.Certificate): Buffer {
  return derOfCert.get(cert) ?? bytes(cert.toSchema().toBER(false));
}

function extension(cert: pkijs.Certificate, extnID: string): pkijs.Extension[] {
  return (cert.extensions ?? []).filter((e) => e.extnID === extnID);
}

function isSigner(sid: pkijs.SignerInfo['sid'], cert: pkijs.Certificate): boolean {
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    return cert.issuer.isEqual(sid.issuer) && cert.serialNumber.isEqual(sid.serialNumber);
  }
  // [0] SubjectKeyIdentifier: compare with the certificate's own SKI extension.
  const ski = extension(cert, OID.subjectKeyIdentifier)[0]?.parsedValue as asn1js.OctetString | undefined;
  const wanted = (sid as asn1js.Primitive).valueBlock?.valueHexView;
  return !!ski && !!wanted && bytes(ski.valueBlock.valueHexView).equals(bytes(wanted));
}

function attributeValue(attrs: pkijs.Attribute[], type: string): asn1js.AsnType | undefined {
  const found = attrs.filter((a) => a.type === type);
  if (found.length > 1) throw invalid(`signed attribute ${type} appears more than once`);
  return found[0]?.values[0];
}

/** RFC 3161 §2.3: exactly one EKU extension, critical, whose only purpose is id-kp-timeStamping. */
function checkTimestampingEku(cert: pkijs.Certificate, subject: string): void {
  const ekus = extension(cert, OID.extKeyUsage);
  if (ekus.length !== 1) {
    throw invalid(`TSA certificate ${subject} has no extended key usage extension (timeStamping required)`);
  }
  const eku = ekus[0]!;
  const purposes = (eku.parsedValue as pkijs.ExtKeyUsage | undefined)?.keyPurposes ?? [];
  if (purposes.length !== 1 || purposes[0] !== OID.kpTimeStamping) {
    throw invalid(
      `TSA certificate ${subject} extended key usage is [${purposes.join(', ')}], not only timeStamping`,
    );
  }
  if (!eku.critical) {
    throw invalid(`TSA certificate ${subject} extended key usage timeStamping is not marked critical`);
  }
}

/**
 * ESS signing-certificate(-v2) (RFC 2634 / 5035, required in a TST by RFC 3161 §2.4.2): its first
 * certificate id must hash to the signer certificate, and its issuerSerial, when present, must name it.
 */
function checkEssCertId(attrs: pkijs.Attribute[], signer: pkijs.Certificate, signerDer: Buffer): void {
  const v2 = attributeValue(attrs, OID.signingCertificateV2);
  const v1 = v2 ? undefined : attributeValue(attrs, OID.signingCertificate);
  const value = v2 ?? v1;
  if (!value) throw invalid('signed attributes carry no ESS signing-certificate(-v2) naming the TSA');
  const certIds = (value as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence | undefined;
  const first = certIds?.valueBlock.value[0] as asn1js.Sequence | undefined;
  if (!first) throw invalid('ESS signing-certificate attribute lists no certificate');
  const parts = [...first.valueBlock.value];
  let hashName = v2 ? 'sha256' : 'sha1'; // ESSCertIDv2 defaults to SHA-256; ESSCertID is SHA-1
  if (v2 && parts[0] instanceof asn1js.Sequence) {
    const alg = new pkijs.AlgorithmIdentifier({ schema: parts.shift()! }).algorithmId;
    const name = DIGEST_BY_OID[alg];
    if (!name) throw invalid(`ESS signing-certificate-v2 uses unsupported hash ${alg}`);
    hashName = name;
  }
  const certHash = parts[0];
  if (!(certHash instanceof asn1js.OctetString)) throw invalid('ESS certificate id has no certHash');
  if (!bytes(certHash.valueBlock.valueHexView).equals(createHash(hashName).update(signerDer).digest())) {
    throw invalid('ESS signing-certificate attribute does not identify the signer certificate');
  }
  const issuerSerial = parts[1] as asn1js.Sequence | undefined;
  const serial = issuerSerial?.valueBlock.value[1];
  if (serial && !(serial instanceof asn1js.Integer && serial.isEqual(signer.serialNumber))) {
    throw invalid('ESS signing-certificate issuerSerial names another certificate');
  }
}

interface ParsedToken {
  signedData: pkijs.SignedData;
  tstInfoDer: Buffer;
  tstInfo: pkijs.TSTInfo;
  certificates: pkijs.Certificate[];
}

/**
 * The token without SignedData's certificates field, and those certificates as the token carries them:
 * most of a token's bytes, and most of what pkijs's schema walk would cost per token.
 */
function splitCertificates(tokenDer: Buffer, outer: Tlv): { stripped: Buffer; certificatesDer: Buffer[] } {
  const [oid, explicit] = readChildren(tokenDer, outer);
  const signedData = explicit && readChildren(tokenDer, explicit)[0];
  if (!oid || !explicit || explicit.tag !== TAG.CONTEXT_0 || !signedData) {
    throw new Error('ContentInfo has no [0] content');
  }
  const fields = readChildren(tokenDer, signedData);
  const certificates = fields.find((f) => f.tag === TAG.CONTEXT_0);
  if (!certificates) return { stripped: tokenDer, certificatesDer: [] };
  const certificatesDer = readChildren(tokenDer, certificates)
    .filter((c) => c.tag === TAG.SEQUENCE) // other certificate formats are not X.509 certificates
    .map((c) => bytesOf(tokenDer, c));
  const kept = fields.filter((f) => f !== certificates).map((f) => bytesOf(tokenDer, f));
  const stripped = tlv(TAG.SEQUENCE, bytesOf(tokenDer, oid), tlv(TAG.CONTEXT_0, tlv(TAG.SEQUENCE, ...kept)));
  return { stripped, certificatesDer };
}

const pkijsCerts = new Map<string, pkijs.Certificate>();
const derOfCert = new WeakMap<pkijs.Certificate, Buffer>();

function cachedPkijsCert(der: Buffer): pkijs.Certificate {
  const key = der.toString('latin1');
  let cert = pkijsCerts.get(key);
  if (!cert) {
    cert = pkijs.Certificate.fromBER(new Uint8Array(der));
    if (pkijsCerts.size >= CACHE_LIMIT) pkijsCerts.delete(pkijsCerts.keys().next().value!);
    pkijsCerts.set(key, cert);
    derOfCert.set(cert, Buffer.from(der));
  }
  return cert;
}

function parseToken(tokenDer: Buffer): ParsedToken {
  let signedData: pkijs.SignedData;
  let certificatesDer: Buffer[];
  try {
    const outer = readTlv(tokenDer, 0);
    if (outer.end !== tokenDer.length) throw new Error('trailing bytes after the ContentInfo');
    const split = splitCertificates(tokenDer, outer);
    certificatesDer = split.certificatesDer;
    // pkijs parses the rest, a few hundred bytes (a new buffer: pkijs re-tags the signed attributes'
    // bytes in place while parsing); the certificates are parsed once per distinct certificate.
    const contentInfo = pkijs.ContentInfo.fromBER(new Uint8Array(split.stripped));
    if (contentInfo.contentType !== OID.signedData) {
      throw new Error(`ContentInfo is ${contentInfo.contentType}, not SignedData`);
    }
    signedData = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (cause) {
    throw invalid(`not a DER ContentInfo(SignedData): ${(cause as Error).message}`, cause);
  }
  const encap = signedData.encapContentInfo;
  if (encap.eContentType !== OID.tstInfo) {
    throw invalid(`eContentType is ${encap.eContentType}, not id-ct-TSTInfo`);
  }
  if (!encap.eContent) throw invalid('SignedData carries no TSTInfo');
  const tstInfoDer = bytes(encap.eContent.getValue());
  let tstInfo: pkijs.TSTInfo;
  try {
    tstInfo = pkijs.TSTInfo.fromBER(new Uint8Array(tstInfoDer));
  } catch (cause) {
    throw invalid(`TSTInfo does not parse: ${(cause as Error).message}`, cause);
  }
  let certificates: pkijs.Certificate[];
  try {
    certificates = certificatesDer.map(cachedPkijsCert);
  } catch (cause) {
    throw invalid(`a certificate in the token does not parse: ${(cause as Error).message}`, cause);
  }
  return { signedData, tstInfoDer, tstInfo, certificates };
}

function checkSignerInfo(parsed: ParsedToken, signerCert: pkijs.Certificate, signerDer: Buffer): void {
  const signerInfo = parsed.signedData.signerInfos[0]!;
  const attrs = signerInfo.signedAttrs?.attributes;
  if (!signerInfo.signedAttrs || !attrs) throw invalid('SignerInfo has no signed attributes');
  const hashName = DIGEST_BY_OID[signerInfo.digestAlgorithm.algorithmId];
  if (!hashName) throw invalid(`digest algorithm ${signerInfo.digestAlgorithm.algorithmId} is not supported`);
  const sigAlg = signerInfo.signatureAlgorithm.algorithmId;
  const keyType = SIGNATURE_KEY_TYPE_BY_OID[sigAlg];
  if (!keyType) throw invalid(`signature algorithm ${sigAlg} is not supported`);

  const contentType = attributeValue(attrs, OID.contentType);
  if (!(contentType instanceof asn1js.ObjectIdentifier) || contentType.getValue() !== OID.tstInfo) {
    throw invalid('content-type signed attribute is missing or is not id-ct-TSTInfo');
  }
  const messageDigest = attributeValue(attrs, OID.messageDigest);
  if (
    !(messageDigest instanceof asn1js.OctetString) ||
    !bytes(messageDigest.valueBlock.valueHexView).equals(
      createHash(hashName).update(parsed.tstInfoDer).digest(),
    )
  ) {
    throw invalid('message-digest signed attribute does not match the TSTInfo');
  }
  checkEssCertId(attrs, signerCert, signerDer);

  const key = cachedCertificate(signerDer).publicKey;
  if (key.asymmetricKeyType !== keyType) {
    throw invalid(`signature algorithm ${sigAlg} does not match the TSA's ${key.asymmetricKeyType} key`);
  }
  // pkijs keeps the attributes' bytes as received, already re-tagged as the SET the signature covers.
  const signed = bytes(signerInfo.signedAttrs.encodedValue);
  const signature = bytes(signerInfo.signature.valueBlock.valueHexView);
  if (!cryptoVerify(hashName, signed, key, signature)) {
    throw invalid("signature does not verify with the TSA certificate's key");
  }
}

/** Checks a TimeStampToken as described at the top of this module; throws TimestampError('invalid'). */
export function checkTimestampToken(tokenDer: Buffer, opts: CheckTimestampOptions): TimestampToken {
  const parsed = parseToken(tokenDer);
  const { tstInfo } = parsed;

  const imprint = tstInfo.messageImprint;
  if (imprint.hashAlgorithm.algorithmId !== OID.sha256) {
    throw invalid(`message imprint uses ${imprint.hashAlgorithm.algorithmId}, not SHA-256`);
  }
  const imprintDigest = bytes(imprint.hashedMessage.valueBlock.valueHexView);
  if (!imprintDigest.equals(opts.digest)) {
    throw invalid(
      `message imprint ${imprintDigest.toString('hex')} is not the digest sent (${opts.digest.toString('hex')})`,
    );
  }
  if (opts.nonce) {
    const got = tstInfo.nonce ? unsignedMagnitude(tstInfo.nonce.valueBlock.valueHexView) : undefined;
    if (!got) throw invalid('the nonce sent is missing from the token');
    if (tstInfo.nonce!.valueBlock.valueHexView[0]! & 0x80 || !got.equals(unsignedMagnitude(opts.nonce))) {
      throw invalid(`nonce ${got.toString('hex')} is not the nonce sent`);
    }
  }
  if (opts.policyOid && tstInfo.policy !== opts.policyOid) {
    throw invalid(`policy ${tstInfo.policy} is not the policy asked for (${opts.policyOid})`);
  }
  const genTime = tstInfo.genTime;
  const now = opts.now ?? new Date();
  const skew = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (genTime.getTime() > now.getTime() + skew) {
    throw invalid(`genTime ${genTime.toISOString()} is ahead of the local clock (${now.toISOString()})`);
  }

  if (parsed.signedData.signerInfos.length !== 1) {
    throw invalid(`expected exactly one SignerInfo, found ${parsed.signedData.signerInfos.length}`);
  }
  const sid = parsed.signedData.signerInfos[0]!.sid;
  const extra = (opts.extraCertsDer ?? []).map((d, i) => {
    try {
      return pkijs.Certificate.fromBER(new Uint8Array(d));
    } catch (cause) {
      throw invalid(`extra certificate ${i} is not a DER X.509 certificate`, cause);
    }
  });
  const signerCert = [...parsed.certificates, ...extra].find((c) => isSigner(sid, c));
  if (!signerCert) {
    throw invalid('the TSA certificate is neither in the token nor among the extra certificates');
  }
  const signerDer = certDer(signerCert);
  const subject = `"${cachedCertificate(signerDer).subject.replace(/\n/g, ', ')}"`;
  checkSignerInfo(parsed, signerCert, signerDer);
  checkTimestampingEku(signerCert, subject);

  const certificatesDer = parsed.certificates.map(certDer);
  const pool = [...certificatesDer, ...(opts.extraCertsDer ?? [])];
  // A night's tokens all come from one TSA certificate: its path is built once, and later tokens only
  // check that their genTime falls where every certificate of that path is valid.
  const pathKey = fingerprint([signerDer, ...pool, Buffer.from('|'), ...opts.trustedRootsDer]);
  const known = verifiedPaths.get(pathKey);
  if (!known || genTime.getTime() < known.from || genTime.getTime() > known.to) {
    let path: Buffer[];
    try {
      path = verifyCertificatePath(signerDer, pool, opts.trustedRootsDer, genTime);
    } catch (cause) {
      throw invalid(`TSA certificate does not chain to a trusted root: ${(cause as Error).message}`, cause);
    }
    const certs = path.map(cachedCertificate);
    if (verifiedPaths.size >= CACHE_LIMIT) verifiedPaths.delete(verifiedPaths.keys().next().value!);
    verifiedPaths.set(pathKey, {
      from: Math.max(...certs.map((c) => new Date(c.validFrom).getTime())),
      to: Math.min(...certs.map((c) => new Date(c.validTo).getTime())),
    });
  }

  return {
    der: tokenDer,
    genTime,
    serialHex: unsignedMagnitude(tstInfo.serialNumber.valueBlock.valueHexView).toString('hex'),
    policyOid: tstInfo.policy,
    tsaCertificateDer: signerDer,
    certificatesDer,
    imprintDigest,
  };
}

/**
 * What a token says, without the trust checks: for reporting the timestamp a CMS already carries.
 * Throws TimestampError('invalid') when it is not a TimeStampToken at all.
 */
export function readTimestampToken(tokenDer: Buffer): {
  genTime: Date;
  imprintDigest: Buffer;
  imprintAlgorithm: string;
  tsaSubject?: string;
} {
  const parsed = parseToken(tokenDer);
  const sid = parsed.signedData.signerInfos[0]?.sid;
  const signer = sid ? parsed.certificates.find((c) => isSigner(sid, c)) : undefined;
  return {
    genTime: parsed.tstInfo.genTime,
    imprintDigest: bytes(parsed.tstInfo.messageImprint.hashedMessage.valueBlock.valueHexView),
    imprintAlgorithm: parsed.tstInfo.messageImprint.hashAlgorithm.algorithmId,
    ...(signer ? { tsaSubject: cachedCertificate(certDer(signer)).subject.replace(/\n/g, ', ') } : {}),
  };
}
