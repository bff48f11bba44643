// OCSP (RFC 6960) for one certificate: the request (one CertID, a nonce) and every check of the
// answer before it may go into a PDF: successful status, a basic response signed by the issuer or by a
// responder the issuer delegated (id-kp-OCSPSigning), the CertID we asked about, our nonce if echoed,
// and times that make sense now. pkijs parses; the hashes and signatures are over the exact bytes.
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { certificateFacts, CertificateFacts, isIssuedBy, verifySignedBytes } from './certificate-facts';
import { bytesOf, readChildren, readTlv, TAG } from './der';
import { CRL_REASON_NAMES, OID } from './oids';
import { RevocationError } from './revocation-errors';

export type CertIdHash = 'sha1' | 'sha256';

export type RevocationStatus =
  { status: 'good' } | { status: 'revoked'; revokedAt: Date; reason?: string } | { status: 'unknown' };

export interface OcspRequest {
  der: Buffer;
  /** The nonce as sent: the extnValue bytes (a DER OCTET STRING holding the random octets). */
  nonceExtnValue: Buffer;
}

export interface OcspAnswer {
  status: RevocationStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** The delegated responder's certificate, when the issuer did not sign the response itself. */
  responderCertsDer: Buffer[];
}

const HASH_OIDS: Record<CertIdHash, string> = { sha1: OID.sha1, sha256: OID.sha256 };
const HASH_BY_OID: Record<string, CertIdHash> = { [OID.sha1]: 'sha1', [OID.sha256]: 'sha256' };

/** RFC 8954 recommends 32 octets, the most a responder must accept. */
const NONCE_LENGTH = 32;

const RESPONSE_STATUS: Record<number, string> = {
  1: 'malformedRequest',
  2: 'internalError',
  3: 'tryLater',
  5: 'sigRequired',
  6: 'unauthorized',
};

function certIdHashes(cert: CertificateFacts, issuer: CertificateFacts, hash: CertIdHash) {
  return {
    // The issuer's name as the certificate spells it (equal to the issuer's subject by chain rules).
    nameHash: createHash(hash).update(cert.issuerDer).digest(),
    keyHash: createHash(hash).update(issuer.publicKeyBits).digest(),
  };
}

/**
 * `hash` picks the CertID hash: SHA-1 by default because RFC 5019 responders (most public CAs) only
 * understand that; it identifies, it does not protect, so its weakness does not matter here.
 */
export function buildOcspRequest(
  cert: CertificateFacts,
  issuer: CertificateFacts,
  hash: CertIdHash = 'sha1',
  nonce: Buffer = randomBytes(NONCE_LENGTH),
): OcspRequest {
  const { nameHash, keyHash } = certIdHashes(cert, issuer, hash);
  const nonceExtnValue = Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER());
  const request = new pkijs.OCSPRequest({
    tbsRequest: new pkijs.TBSRequest({
      requestList: [
        new pkijs.Request({
          reqCert: new pkijs.CertID({
            // RFC 5754 §2: SHA-1 and SHA-2 AlgorithmIdentifiers are sent without parameters.
            hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: HASH_OIDS[hash] }),
            issuerNameHash: new asn1js.OctetString({ valueHex: nameHash }),
            issuerKeyHash: new asn1js.OctetString({ valueHex: keyHash }),
            serialNumber: new asn1js.Integer({ valueHex: cert.serialContent }),
          }),
        }),
      ],
      requestExtensions: [
        new pkijs.Extension({
          extnID: OID.ocspNonce,
          critical: false,
          extnValue: new Uint8Array(nonceExtnValue).buffer,
        }),
      ],
    }),
  });
  return { der: Buffer.from(request.toSchema(true).toBER()), nonceExtnValue };
}

export interface OcspCheckContext {
  cert: CertificateFacts;
  issuer: CertificateFacts;
  /** The nonce we sent; a response that carries a different one is a replay. */
  nonceExtnValue?: Buffer;
  now: Date;
  /** Allowed clock difference to the responder. */
  skewMs: number;
  /** Named in messages. */
  url: string;
}

function invalid(ctx: OcspCheckContext, message: string, cause?: unknown): RevocationError {
  return new RevocationError(
    'invalid',
    `OCSP response from ${ctx.url} for certificate ${ctx.cert.label}: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/** The raw DER of the certificates a BasicOCSPResponse carries ([0] EXPLICIT SEQUENCE OF Certificate). */
function embeddedCertificates(basicDer: Buffer): Buffer[] {
  const fields = readChildren(basicDer, readTlv(basicDer, 0));
  const certs = fields[3];
  if (!certs || certs.tag !== TAG.CONTEXT_0) return [];
  const list = readChildren(basicDer, certs)[0];
  return list ? readChildren(basicDer, list).map((c) => Buffer.from(bytesOf(basicDer, c))) : [];
}

function matchesResponderId(responderId: unknown, candidate: CertificateFacts): boolean {
  if (responderId instanceof pkijs.RelativeDistinguishedNames) {
    return responderId.isEqual(candidate.pkijs.subject);
  }
  if (responderId instanceof asn1js.OctetString) {
    // byKey: SHA-1 of the responder's subjectPublicKey bits (RFC 6960 §4.2.1).
    const keyHash = createHash('sha1').update(candidate.publicKeyBits).digest();
    return keyHash.equals(Buffer.from(responderId.valueBlock.valueHexView));
  }
  return false;
}

function statusOf(certStatus: asn1js.BaseBlock, ctx: OcspCheckContext): RevocationStatus {
  const { tagClass, tagNumber } = certStatus.idBlock;
  if (tagClass !== 3) throw invalid(ctx, 'certStatus is not a context-tagged choice');
  if (tagNumber === 0) return { status: 'good' };
  if (tagNumber === 2) return { status: 'unknown' };
  if (tagNumber !== 1) throw invalid(ctx, `certStatus has unknown tag [${tagNumber}]`);
  // RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
  const parts = (certStatus as asn1js.Constructed).valueBlock.value;
  const time = parts[0];
  if (!(time instanceof asn1js.GeneralizedTime)) throw invalid(ctx, 'revoked status has no revocationTime');
  const revokedAt = time.toDate();
  const reasonBlock = (parts[1] as asn1js.Constructed | undefined)?.valueBlock.value[0];
  if (reasonBlock instanceof asn1js.Enumerated) {
    const code = reasonBlock.valueBlock.valueDec;
    return { status: 'revoked', revokedAt, reason: CRL_REASON_NAMES[code] ?? `reason ${code}` };
  }
  return { status: 'revoked', revokedAt };
}

/**
 * The checked content of a whole OCSPResponse. Throws RevocationError: 'unavailable' for
 * internalError/tryLater (ask again later), 'invalid' for anything that fails a check.
 */
export function checkOcspResponse(der: Buffer, ctx: OcspCheckContext): OcspAnswer {
  let response: pkijs.OCSPResponse;
  let basic: pkijs.BasicOCSPResponse;
  let basicDer: Buffer;
  try {
    response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
  } catch (cause) {
    throw invalid(ctx, `not a DER OCSPResponse (${(cause as Error).message})`, cause);
  }
  const code = response.responseStatus.valueBlock.valueDec;
  if (code !== 0) {
    const name = RESPONSE_STATUS[code] ?? `status ${code}`;
    const kind = code === 2 || code === 3 ? 'unavailable' : 'invalid';
    throw new RevocationError(
      kind,
      `OCSP responder ${ctx.url} answered ${name} for certificate ${ctx.cert.label}`,
    );
  }
  if (!response.responseBytes || response.responseBytes.responseType !== OID.ocspBasic) {
    throw invalid(
      ctx,
      `response type ${response.responseBytes?.responseType ?? '(none)'} is not id-pkix-ocsp-basic`,
    );
  }
  try {
    basicDer = Buffer.from(response.responseBytes.response.valueBlock.valueHexView);
    basic = pkijs.BasicOCSPResponse.fromBER(new Uint8Array(basicDer));
  } catch (cause) {
    throw invalid(ctx, `BasicOCSPResponse does not parse (${(cause as Error).message})`, cause);
  }
  const data = basic.tbsResponseData;

  // Who signed: the issuer itself, or a certificate in the response that the issuer made a responder.
  const embedded = embeddedCertificates(basicDer).map(certificateFacts);
  const responderCertsDer: Buffer[] = [];
  let signer: CertificateFacts | undefined;
  if (matchesResponderId(data.responderID, ctx.issuer)) {
    signer = ctx.issuer;
  } else {
    const named = embedded.find((c) => matchesResponderId(data.responderID, c));
    if (!named) throw invalid(ctx, 'signed neither by the issuer nor by a responder certificate it carries');
    if (!isIssuedBy(named, ctx.issuer)) {
      throw invalid(ctx, `responder certificate ${named.label} was not issued by ${ctx.issuer.label}`);
    }
    if (!named.extKeyUsage.includes(OID.kpOcspSigning)) {
      throw invalid(ctx, `responder certificate ${named.label} lacks extended key usage id-kp-OCSPSigning`);
    }
    if (ctx.now < named.notBefore || ctx.now > named.notAfter) {
      throw invalid(ctx, `responder certificate ${named.label} is not valid at ${ctx.now.toISOString()}`);
    }
    signer = named;
    responderCertsDer.push(named.der);
  }
  let verified: boolean;
  try {
    verified = verifySignedBytes(
      data.tbsView,
      basic.signatureAlgorithm.algorithmId,
      basic.signature.valueBlock.valueHexView,
      signer,
    );
  } catch (cause) {
    throw invalid(ctx, (cause as Error).message, cause);
  }
  if (!verified) throw invalid(ctx, `signature does not verify with the key of ${signer.label}`);

  // The nonce, if the responder returned one (RFC 5019 responders answer from a cache without it).
  const nonce = data.responseExtensions?.find((e) => e.extnID === OID.ocspNonce);
  if (nonce && ctx.nonceExtnValue) {
    const echoed = Buffer.from(nonce.extnValue.valueBlock.valueHexView);
    const raw = ctx.nonceExtnValue.subarray(2); // some responders echo the bare octets
    if (!echoed.equals(ctx.nonceExtnValue) && !echoed.equals(raw)) {
      throw invalid(ctx, 'nonce differs from the one sent (a replayed response?)');
    }
  }

  const single = data.responses.find((r) => {
    const hash = HASH_BY_OID[r.certID.hashAlgorithm.algorithmId];
    if (!hash) return false;
    const { nameHash, keyHash } = certIdHashes(ctx.cert, ctx.issuer, hash);
    return (
      Buffer.from(r.certID.issuerNameHash.valueBlock.valueHexView).equals(nameHash) &&
      Buffer.from(r.certID.issuerKeyHash.valueBlock.valueHexView).equals(keyHash) &&
      Buffer.from(r.certID.serialNumber.valueBlock.valueHexView).equals(ctx.cert.serialContent)
    );
  });
  if (!single) throw invalid(ctx, 'no SingleResponse names this certificate (CertID mismatch)');

  const status = statusOf(single.certStatus as asn1js.BaseBlock, ctx);
  const { thisUpdate, nextUpdate } = single;
  if (thisUpdate.getTime() > ctx.now.getTime() + ctx.skewMs) {
    throw invalid(
      ctx,
      `thisUpdate ${thisUpdate.toISOString()} is in the future (now ${ctx.now.toISOString()})`,
    );
  }
  if (nextUpdate && nextUpdate.getTime() < ctx.now.getTime() - ctx.skewMs) {
    throw invalid(ctx, `nextUpdate ${nextUpdate.toISOString()} has passed (now ${ctx.now.toISOString()})`);
  }
  return { status, thisUpdate, ...(nextUpdate ? { nextUpdate } : {}), responderCertsDer };
}
