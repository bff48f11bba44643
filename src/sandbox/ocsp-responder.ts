// The sandbox's OCSP responder (RFC 6960) for certificates its root issued. Responses are signed by the
// root itself (a CA-signed response, RFC 6960 section 4.2.2.2: no delegated responder certificate to
// check), responderID byKey. Per request: good (issued, not revoked), revoked (time and reason) or
// unknown (not issued here, or a CertID naming another issuer); thisUpdate = now, nextUpdate = now + 1 day;
// a nonce extension is echoed. A request that does not parse is answered malformedRequest.
import * as asn1js from 'asn1js';
import { createHash, sign } from 'node:crypto';
import * as pkijs from 'pkijs';
import type { PkiMaterial } from './pki-material';
import { REVOCATION_REASONS } from './revocation-store';

const BASIC_RESPONSE_OID = '1.3.6.1.5.5.7.48.1.1';
const NONCE_OID = '1.3.6.1.5.5.7.48.1.2';
const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2';
const DAY_MS = 86_400_000;

/** CertID hash algorithms the responder can match. */
const CERT_ID_HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** OCSPResponseStatus values (RFC 6960 section 4.2.1). */
const MALFORMED_REQUEST = 1;

export type CertStatusKind = 'good' | 'revoked' | 'unknown';

/** The DER OCSPResponse for a DER OCSPRequest body. */
export function answerOcspRequest(pki: PkiMaterial, body: Buffer, nowMs: number): Buffer {
  const request = parseRequest(body);
  if (request === undefined) return ocspResponse(MALFORMED_REQUEST);
  const now = new Date(Math.floor(nowMs / 1000) * 1000);
  const responses = request.tbsRequest.requestList.map((r) => singleResponse(pki, r.reqCert, now));
  const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === NONCE_OID);
  const rootKeyBits = pki.root.cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
  const data = new pkijs.ResponseData({
    responderID: new asn1js.OctetString({ valueHex: createHash('sha1').update(rootKeyBits).digest() }),
    producedAt: now,
    responses,
    ...(nonce === undefined ? {} : { responseExtensions: [echoed(nonce)] }),
  });
  const tbs = data.toSchema(true).toBER();
  data.tbsView = new Uint8Array(tbs);
  const basic = new pkijs.BasicOCSPResponse({
    tbsResponseData: data,
    signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_WITH_SHA256_OID }),
    signature: new asn1js.BitString({ valueHex: sign('sha256', Buffer.from(tbs), pki.root.key) }),
  });
  return ocspResponse(0, Buffer.from(basic.toSchema().toBER()));
}

/** The request's nonce extension, value for value (RFC 8954: the response carries the same nonce). */
function echoed(nonce: pkijs.Extension): pkijs.Extension {
  const ext = new pkijs.Extension({ extnID: NONCE_OID, critical: false });
  ext.extnValue = new asn1js.OctetString({ valueHex: nonce.extnValue.valueBlock.valueHexView });
  return ext;
}

/** What the responder says of one serial, for tests and the log. */
export function statusOf(pki: PkiMaterial, serialHex: string): CertStatusKind {
  if (pki.revocations.revocationOf(serialHex) !== undefined) return 'revoked';
  return pki.revocations.wasIssued(serialHex) ? 'good' : 'unknown';
}

function parseRequest(body: Buffer): pkijs.OCSPRequest | undefined {
  if (body.length === 0) return undefined;
  const asn1 = asn1js.fromBER(new Uint8Array(body));
  if (asn1.offset !== body.length) return undefined;
  try {
    const req = new pkijs.OCSPRequest({ schema: asn1.result });
    return req.tbsRequest.requestList.length === 0 ? undefined : req;
  } catch {
    return undefined;
  }
}

function singleResponse(pki: PkiMaterial, certId: pkijs.CertID, now: Date): pkijs.SingleResponse {
  const serialHex = Buffer.from(certId.serialNumber.valueBlock.valueHexView).toString('hex');
  const ours = issuedByRoot(pki, certId);
  const revoked = ours ? pki.revocations.revocationOf(serialHex) : undefined;
  const kind: CertStatusKind = !ours
    ? 'unknown'
    : revoked !== undefined
      ? 'revoked'
      : pki.revocations.wasIssued(serialHex)
        ? 'good'
        : 'unknown';
  let certStatus: asn1js.AsnType;
  if (kind === 'revoked' && revoked !== undefined) {
    // RevokedInfo ::= SEQUENCE { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
    certStatus = new asn1js.Constructed({
      idBlock: { tagClass: 3, tagNumber: 1 },
      value: [
        new asn1js.GeneralizedTime({ valueDate: wholeSeconds(revoked.revokedAt) }),
        new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 0 },
          value: [new asn1js.Enumerated({ value: REVOCATION_REASONS[revoked.reason] })],
        }),
      ],
    });
  } else {
    // good [0] IMPLICIT NULL, unknown [2] IMPLICIT NULL
    certStatus = new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: kind === 'good' ? 0 : 2 } });
  }
  return new pkijs.SingleResponse({
    certID: certId,
    certStatus,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + DAY_MS),
  });
}

/** Whether the CertID names the sandbox root as issuer, in whichever hash the client chose. */
function issuedByRoot(pki: PkiMaterial, certId: pkijs.CertID): boolean {
  const hash = CERT_ID_HASHES[certId.hashAlgorithm.algorithmId];
  if (hash === undefined) return false;
  const nameDer = Buffer.from(pki.root.cert.subject.toSchema().toBER());
  const keyBits = pki.root.cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
  const nameHash = createHash(hash).update(nameDer).digest();
  const keyHash = createHash(hash).update(keyBits).digest();
  return (
    nameHash.equals(Buffer.from(certId.issuerNameHash.valueBlock.valueHexView)) &&
    keyHash.equals(Buffer.from(certId.issuerKeyHash.valueBlock.valueHexView))
  );
}

function ocspResponse(status: number, basicDer?: Buffer): Buffer {
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: status }),
    ...(basicDer === undefined
      ? {}
      : {
          responseBytes: new pkijs.ResponseBytes({
            responseType: BASIC_RESPONSE_OID,
            response: new asn1js.OctetString({ valueHex: basicDer }),
          }),
        }),
  });
  return Buffer.from(response.toSchema().toBER());
}

export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}
