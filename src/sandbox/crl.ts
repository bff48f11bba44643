// The root's CRL (RFC 5280 section 5), made afresh per request from the revocations in dataDir: v2,
// signed by the root (keyUsage cRLSign), thisUpdate = now, nextUpdate = now + 1 day, cRLNumber and
// authorityKeyIdentifier extensions, each revoked serial with its date and reasonCode. The CRL number
// is the issue time in seconds, so it grows with every CRL that differs (RFC 5280 5.2.3 wants it
// monotonic, and a sandbox restart must not reset it).
import * as asn1js from 'asn1js';
import { sign } from 'node:crypto';
import * as pkijs from 'pkijs';
import { wholeSeconds } from './ocsp-responder';
import type { PkiMaterial } from './pki-material';
import { REVOCATION_REASONS } from './revocation-store';

const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2';
const CRL_NUMBER_OID = '2.5.29.20';
const AUTHORITY_KEY_ID_OID = '2.5.29.35';
const SUBJECT_KEY_ID_OID = '2.5.29.14';
const REASON_CODE_OID = '2.5.29.21';
const DAY_MS = 86_400_000;

export function currentCrl(pki: PkiMaterial, nowMs: number): Buffer {
  const now = wholeSeconds(new Date(nowMs));
  const revoked = [...pki.revocations.revocations().values()].map(
    (r) =>
      new pkijs.RevokedCertificate({
        userCertificate: new asn1js.Integer({ valueHex: serialBytes(r.serialHex) }),
        revocationDate: new pkijs.Time({ type: pkijs.TimeType.UTCTime, value: wholeSeconds(r.revokedAt) }),
        crlEntryExtensions: new pkijs.Extensions({
          extensions: [
            extension(REASON_CODE_OID, new asn1js.Enumerated({ value: REVOCATION_REASONS[r.reason] })),
          ],
        }),
      }),
  );
  const algorithm = () => new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_WITH_SHA256_OID });
  const crl = new pkijs.CertificateRevocationList({
    version: 1, // v2
    signature: algorithm(),
    issuer: pki.root.cert.subject,
    thisUpdate: new pkijs.Time({ type: pkijs.TimeType.UTCTime, value: now }),
    nextUpdate: new pkijs.Time({ type: pkijs.TimeType.UTCTime, value: new Date(now.getTime() + DAY_MS) }),
    ...(revoked.length === 0 ? {} : { revokedCertificates: revoked }),
    crlExtensions: new pkijs.Extensions({
      extensions: [
        extension(AUTHORITY_KEY_ID_OID, authorityKeyIdentifier(pki)),
        extension(CRL_NUMBER_OID, new asn1js.Integer({ value: Math.floor(nowMs / 1000) })),
      ],
    }),
    signatureAlgorithm: algorithm(),
  });
  // pkijs signs through WebCrypto only (async); the root signs here with node:crypto, over the TBS that
  // toSchema(true) encodes (encodeTBS itself is protected).
  const tbs = (crl.toSchema(true).valueBlock.value[0] as asn1js.Sequence).toBER();
  crl.tbsView = new Uint8Array(tbs);
  crl.signatureValue = new asn1js.BitString({ valueHex: sign('sha256', Buffer.from(tbs), pki.root.key) });
  return Buffer.from(crl.toSchema().toBER());
}

/** AuthorityKeyIdentifier { keyIdentifier [0] } with the root's subjectKeyIdentifier. */
function authorityKeyIdentifier(pki: PkiMaterial): asn1js.Sequence {
  const ski = pki.root.cert.extensions?.find((e) => e.extnID === SUBJECT_KEY_ID_OID);
  const keyId =
    ski === undefined ? new Uint8Array() : asn1js.fromBER(ski.extnValue.valueBlock.valueHexView).result;
  const bytes = keyId instanceof asn1js.OctetString ? keyId.valueBlock.valueHexView : new Uint8Array();
  return new asn1js.Sequence({
    value: [new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: bytes })],
  });
}

function extension(oid: string, value: asn1js.AsnType): pkijs.Extension {
  const ext = new pkijs.Extension({ extnID: oid, critical: false });
  ext.extnValue = new asn1js.OctetString({ valueHex: value.toBER() });
  return ext;
}

/** A serial's DER INTEGER content octets: a leading zero octet when its top bit is set. */
function serialBytes(hex: string): Uint8Array {
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  const bytes = Buffer.from(even, 'hex');
  return new Uint8Array((bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}
