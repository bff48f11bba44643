// What chain building and revocation checking need to know about one certificate, parsed once: the
// exact DER of its names, serial and public key (OCSP CertID hashes are over these bytes, so they are
// taken from the certificate, never re-encoded), its key identifiers, and where its revocation data is.
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { bytesOf, contentOf, readChildren, readTlv, TAG } from './der';
import { OID, SIGNATURE_HASH_BY_OID } from './oids';
import { PadesError } from './pades-error';

export interface CertificateFacts {
  der: Buffer;
  /** SHA-256 of the DER, hex: the certificate's key in every cache and map. */
  sha256: string;
  x509: X509Certificate;
  pkijs: pkijs.Certificate;
  /** Content bytes of the serialNumber INTEGER. */
  serialContent: Buffer;
  /** Upper-case hex, as node prints it. */
  serialHex: string;
  issuerDer: Buffer;
  subjectDer: Buffer;
  /** The subjectPublicKey BIT STRING's bits (no unused-bits octet): what OCSP key hashes cover. */
  publicKeyBits: Buffer;
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  /** id-ad-ocsp URIs of the Authority Information Access extension, http(s) only, in order. */
  ocspUrls: string[];
  /** CRL distribution point URIs, http(s) only, in order. */
  crlUrls: string[];
  extKeyUsage: string[];
  /** id-pkix-ocsp-nocheck: a delegated responder certificate whose own status needs no check. */
  ocspNoCheck: boolean;
  selfIssued: boolean;
  notBefore: Date;
  notAfter: Date;
  /** `<subject> serial <hex>`, for messages. */
  label: string;
}

const CACHE_LIMIT = 1024;
const cache = new Map<string, CertificateFacts>();

export function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** One-line subject: node prints one attribute per line. */
export function oneLineName(name: string): string {
  return name.split('\n').join(', ');
}

function httpUris(names: pkijs.GeneralName[] | undefined): string[] {
  const out: string[] = [];
  for (const n of names ?? []) {
    // GeneralName type 6 is uniformResourceIdentifier.
    if (n.type === 6 && typeof n.value === 'string' && /^https?:\/\//i.test(n.value)) out.push(n.value);
  }
  return out;
}

export function certificateFacts(der: Buffer): CertificateFacts {
  const sha256 = sha256Hex(der);
  const hit = cache.get(sha256);
  if (hit) return hit;
  let facts: CertificateFacts;
  try {
    facts = parse(der, sha256);
  } catch (cause) {
    throw new PadesError(`not a parsable X.509 certificate (sha256 ${sha256}): ${(cause as Error).message}`, {
      cause,
    });
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(sha256, facts);
  return facts;
}

function parse(der: Buffer, sha256: string): CertificateFacts {
  const x509 = new X509Certificate(der);
  const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  const tbs = readChildren(der, readChildren(der, readTlv(der, 0))[0]!);
  const at = tbs[0]?.tag === TAG.CONTEXT_0 ? 1 : 0; // [0] EXPLICIT version is optional
  const serial = tbs[at]!;
  const issuer = tbs[at + 2]!;
  const subject = tbs[at + 4]!;
  const spki = readChildren(der, tbs[at + 5]!);
  const keyBitString = contentOf(der, spki[1]!);

  let subjectKeyId: Buffer | undefined;
  let authorityKeyId: Buffer | undefined;
  let ocspUrls: string[] = [];
  let crlUrls: string[] = [];
  let extKeyUsage: string[] = [];
  let ocspNoCheck = false;
  for (const ext of cert.extensions ?? []) {
    const value = ext.parsedValue as unknown;
    switch (ext.extnID) {
      case OID.subjectKeyIdentifier:
        subjectKeyId = Buffer.from((value as asn1js.OctetString).valueBlock.valueHexView);
        break;
      case OID.authorityKeyIdentifier: {
        const id = (value as pkijs.AuthorityKeyIdentifier).keyIdentifier;
        if (id) authorityKeyId = Buffer.from(id.valueBlock.valueHexView);
        break;
      }
      case OID.authorityInfoAccess:
        ocspUrls = httpUris(
          (value as pkijs.InfoAccess).accessDescriptions
            .filter((d) => d.accessMethod === OID.adOcsp)
            .map((d) => d.accessLocation),
        );
        break;
      case OID.crlDistributionPoints:
        for (const dp of (value as pkijs.CRLDistributionPoints).distributionPoints) {
          // A full name is a GeneralName list; a name relative to the issuer carries no URL.
          if (Array.isArray(dp.distributionPoint)) crlUrls.push(...httpUris(dp.distributionPoint));
        }
        break;
      case OID.extKeyUsage:
        extKeyUsage = (value as pkijs.ExtKeyUsage).keyPurposes;
        break;
      case OID.ocspNoCheck:
        ocspNoCheck = true;
        break;
    }
  }
  crlUrls = [...new Set(crlUrls)];
  const subjectText = oneLineName(x509.subject);
  return {
    der,
    sha256,
    x509,
    pkijs: cert,
    serialContent: Buffer.from(contentOf(der, serial)),
    serialHex: x509.serialNumber.toUpperCase(),
    issuerDer: Buffer.from(bytesOf(der, issuer)),
    subjectDer: Buffer.from(bytesOf(der, subject)),
    publicKeyBits: Buffer.from(keyBitString.subarray(1)),
    ...(subjectKeyId ? { subjectKeyId } : {}),
    ...(authorityKeyId ? { authorityKeyId } : {}),
    ocspUrls,
    crlUrls,
    extKeyUsage,
    ocspNoCheck,
    selfIssued: bytesOf(der, issuer).equals(bytesOf(der, subject)),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    label: `${subjectText} serial ${x509.serialNumber.toUpperCase()}`,
  };
}

/** Whether `issuer` issued `cert`: names chain, key identifiers agree when both exist, signature verifies. */
export function isIssuedBy(cert: CertificateFacts, issuer: CertificateFacts): boolean {
  if (!cert.issuerDer.equals(issuer.subjectDer)) return false;
  if (cert.authorityKeyId && issuer.subjectKeyId && !cert.authorityKeyId.equals(issuer.subjectKeyId)) {
    return false;
  }
  try {
    return cert.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

/**
 * Whether `signature` over `tbs` verifies with `key` under the signature algorithm `algorithmOid`
 * (certificates, OCSP responses and CRLs share this shape). Throws for an algorithm we do not accept.
 */
export function verifySignedBytes(
  tbs: Uint8Array,
  algorithmOid: string,
  signature: Uint8Array,
  signer: CertificateFacts,
): boolean {
  const hash = SIGNATURE_HASH_BY_OID[algorithmOid];
  if (!hash)
    throw new PadesError(
      `signature algorithm ${algorithmOid} is not supported (RSA PKCS#1 v1.5 or ECDSA with SHA-2 are)`,
    );
  try {
    return cryptoVerify(hash, tbs, signer.x509.publicKey, signature);
  } catch {
    return false;
  }
}
