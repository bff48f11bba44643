// The sandbox's PKI over HTTP: the RFC 3161 TSA (`POST /tsa`), CSC `signatures/timestamp` (v2 and v1,
// same shape: `hash`, `hashAlgo`, `nonce`, `clientData` in; `timestamp`, a TimeStampToken, out), the
// OCSP responder (`POST /ocsp`, `GET /ocsp/<base64 request>` per RFC 6960 A.1), the root's CRL
// (`GET /crl/root.crl`) and the root certificate for AIA caIssuers (`GET /ca/root.cer`).
import type { RouteRequest, RouteResult } from './context';
import { currentCrl } from './crl';
import { CscProtocolError, cscErrors } from './csc-errors';
import { optionalString, requireString } from './http-io';
import { answerOcspRequest } from './ocsp-responder';
import { answerTimeStampQuery, timeStampToken, TsaRefusal } from './tsa';

export const TSA_PATH = '/tsa';
export const OCSP_PATH = '/ocsp';
export const CRL_PATH = '/crl/root.crl';
export const ROOT_CERT_PATH = '/ca/root.cer';

function requireContentType(r: RouteRequest, wanted: string): void {
  const type = (r.req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== wanted) {
    throw new CscProtocolError(
      415,
      'invalid_request',
      `Unsupported Content-Type ${JSON.stringify(type ?? '')}; use ${wanted}`,
    );
  }
}

export function handleTsa(r: RouteRequest): RouteResult {
  requireContentType(r, 'application/timestamp-query');
  const bytes = answerTimeStampQuery(r.ctx.pki(), r.body, r.ctx.now());
  return { binary: { contentType: 'application/timestamp-reply', bytes } };
}

/** CSC API v2 section 11.10 (v1.0.4 section 11.10 alike): a token for one hash, nonce echoed. */
export function handleTimestamp(r: RouteRequest): RouteResult {
  const hashB64 = requireString(r.params, 'hash');
  const hashAlgo = requireString(r.params, 'hashAlgo');
  const nonceHex = optionalString(r.params, 'nonce');
  optionalString(r.params, 'clientData');
  const hash = Buffer.from(hashB64, 'base64');
  if (hash.toString('base64') !== hashB64) throw cscErrors.invalidParam('hash', 'not canonical Base64');
  if (nonceHex !== undefined && !/^[0-9a-fA-F]{1,128}$/.test(nonceHex)) {
    throw cscErrors.invalidParam('nonce', 'expected 1 to 128 hexadecimal digits');
  }
  try {
    const token = timeStampToken(
      r.ctx.pki(),
      {
        hashAlgorithmOid: hashAlgo,
        hashedMessage: hash,
        nonce: nonceHex === undefined ? undefined : unsignedInteger(nonceHex),
        certReq: true,
      },
      r.ctx.now(),
    );
    return { body: { timestamp: token.toString('base64') } };
  } catch (err) {
    if (!(err instanceof TsaRefusal)) throw err;
    if (err.failInfo === 'badAlg') throw cscErrors.invalidParam('hashAlgo', err.text);
    if (err.failInfo === 'badDataFormat') throw cscErrors.invalidParam('hash', err.text);
    throw new CscProtocolError(500, 'server_error', `The TSA cannot time-stamp: ${err.text}`);
  }
}

export function handleOcsp(r: RouteRequest): RouteResult {
  let request: Buffer;
  if (r.req.method === 'GET') {
    // RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}
    const pathname = new URL(r.req.url ?? '/', 'http://sandbox').pathname;
    const encoded = decodeURIComponent(pathname.slice(OCSP_PATH.length + 1));
    request = Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  } else {
    requireContentType(r, 'application/ocsp-request');
    request = r.body;
  }
  const bytes = answerOcspRequest(r.ctx.pki(), request, r.ctx.now());
  return { binary: { contentType: 'application/ocsp-response', bytes } };
}

export function handleCrl(r: RouteRequest): RouteResult {
  return { binary: { contentType: 'application/pkix-crl', bytes: currentCrl(r.ctx.pki(), r.ctx.now()) } };
}

export function handleRootCert(r: RouteRequest): RouteResult {
  return { binary: { contentType: 'application/pkix-cert', bytes: r.ctx.pki().root.der } };
}

/** A hex string as the content octets of a non-negative INTEGER (leading 00 when the top bit is set). */
function unsignedInteger(hex: string): Uint8Array {
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  let bytes = Buffer.from(even, 'hex');
  while (bytes.length > 1 && bytes[0] === 0 && ((bytes[1] ?? 0) & 0x80) === 0) bytes = bytes.subarray(1);
  return new Uint8Array((bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}
