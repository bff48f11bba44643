// The sandbox's RFC 3161 time-stamping authority: answers a DER TimeStampReq with a TimeStampResp, and
// makes the TimeStampToken (CMS SignedData over TSTInfo, RFC 5816 signing-certificate-v2) that both
// `POST /tsa` and CSC `signatures/timestamp` hand out. Strict like a real TSA: anything that is not a
// well-formed request for a SHA-2 imprint of the right length under the sandbox's policy is answered
// with status rejection and the PKIFailureInfo bit that says why, never with a token.
import * as asn1js from 'asn1js';
import { createHash, randomBytes, sign } from 'node:crypto';
import * as pkijs from 'pkijs';
import type { PkiMaterial, TsaSigner } from './pki-material';

/** The TSA policy the sandbox issues under (TSTInfo.policy; a request may name it or none). Under the
 * example arc 2.999 (ITU-T X.660): the sandbox's tokens prove nothing outside tests. */
export const TSA_POLICY_OID = '2.999.3161.1';

const TST_INFO_OID = '1.2.840.113549.1.9.16.1.4';
const SIGNED_DATA_OID = '1.2.840.113549.1.7.2';
const CONTENT_TYPE_ATTR = '1.2.840.113549.1.9.3';
const MESSAGE_DIGEST_ATTR = '1.2.840.113549.1.9.4';
const SIGNING_CERTIFICATE_V2_ATTR = '1.2.840.113549.1.9.16.2.47';
const SHA256_OID = '2.16.840.1.101.3.4.2.1';
const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2';

/** Message imprint algorithms the TSA accepts, with their digest lengths. */
export const IMPRINT_ALGORITHMS: Record<string, { name: string; length: number }> = {
  [SHA256_OID]: { name: 'SHA-256', length: 32 },
  '2.16.840.1.101.3.4.2.2': { name: 'SHA-384', length: 48 },
  '2.16.840.1.101.3.4.2.3': { name: 'SHA-512', length: 64 },
};

/** PKIFailureInfo bit numbers (RFC 3161 section 2.4.2). */
export const FAIL_INFO = {
  badAlg: 0,
  badRequest: 2,
  badDataFormat: 5,
  timeNotAvailable: 14,
  unacceptedPolicy: 15,
  unacceptedExtension: 16,
  systemFailure: 25,
} as const;
export type FailInfo = keyof typeof FAIL_INFO;

/** Why a time-stamp request gets no token. */
export class TsaRefusal extends Error {
  constructor(
    readonly failInfo: FailInfo,
    readonly text: string,
  ) {
    super(`${failInfo}: ${text}`);
    this.name = 'TsaRefusal';
  }
}

export interface TokenRequest {
  hashAlgorithmOid: string;
  hashedMessage: Buffer;
  /** Echoed in TSTInfo as given (its DER INTEGER content octets). */
  nonce?: Uint8Array;
  /** Put the TSA certificate (and the root) in the token. */
  certReq: boolean;
}

/** The imprint's algorithm and length, checked; throws TsaRefusal. */
export function checkImprint(hashAlgorithmOid: string, hashedMessage: Buffer): void {
  const alg = IMPRINT_ALGORITHMS[hashAlgorithmOid];
  if (alg === undefined) {
    throw new TsaRefusal('badAlg', `hash algorithm ${hashAlgorithmOid} is not SHA-256, SHA-384 or SHA-512`);
  }
  if (hashedMessage.length !== alg.length) {
    throw new TsaRefusal(
      'badDataFormat',
      `${alg.name} imprint is ${hashedMessage.length} bytes, expected ${alg.length}`,
    );
  }
}

/** A TimeStampToken (ContentInfo DER) for the request at `genTime` (whole seconds, accuracy 1 s). */
export function timeStampToken(pki: PkiMaterial, request: TokenRequest, genTimeMs: number): Buffer {
  checkImprint(request.hashAlgorithmOid, request.hashedMessage);
  const tsa = pki.tsa;
  const genTime = new Date(Math.floor(genTimeMs / 1000) * 1000);
  if (genTime < tsa.notBefore || genTime > tsa.notAfter) {
    // A TSA must not sign outside its certificate's life: a token nobody could validate.
    throw new TsaRefusal('systemFailure', 'the TSA certificate is not valid at this time');
  }
  const tstInfo = new pkijs.TSTInfo({
    version: 1,
    policy: TSA_POLICY_OID,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: request.hashAlgorithmOid }),
      hashedMessage: new asn1js.OctetString({ valueHex: request.hashedMessage }),
    }),
    serialNumber: new asn1js.Integer({ valueHex: positiveSerial() }),
    genTime,
    accuracy: new pkijs.Accuracy({ seconds: 1 }),
    ...(request.nonce === undefined ? {} : { nonce: new asn1js.Integer({ valueHex: request.nonce }) }),
  });
  const tstDer = Buffer.from(tstInfo.toSchema().toBER());
  const signedData = signTstInfo(pki, tsa, tstDer, request.certReq);
  const contentInfo = new pkijs.ContentInfo({
    contentType: SIGNED_DATA_OID,
    content: signedData.toSchema(true),
  });
  return Buffer.from(contentInfo.toSchema().toBER());
}

/** Answers the body of `POST /tsa`: a granted TimeStampResp, or a rejection naming what was wrong. */
export function answerTimeStampQuery(pki: PkiMaterial, body: Buffer, nowMs: number): Buffer {
  try {
    const request = parseTimeStampReq(body);
    return timeStampResp({ status: 0 }, timeStampToken(pki, request, nowMs));
  } catch (err) {
    if (!(err instanceof TsaRefusal)) throw err;
    return rejection(err);
  }
}

export function rejection(refusal: TsaRefusal): Buffer {
  return timeStampResp({ status: 2, failInfo: refusal.failInfo, text: refusal.text });
}

function timeStampResp(s: { status: 0 | 2; failInfo?: FailInfo; text?: string }, token?: Buffer): Buffer {
  const status = new pkijs.PKIStatusInfo({
    status: s.status,
    ...(s.text === undefined ? {} : { statusStrings: [new asn1js.Utf8String({ value: s.text })] }),
    ...(s.failInfo === undefined ? {} : { failInfo: namedBit(FAIL_INFO[s.failInfo]) }),
  });
  const resp = new pkijs.TimeStampResp({
    status,
    ...(token === undefined
      ? {}
      : { timeStampToken: new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(token)).result }) }),
  });
  return Buffer.from(resp.toSchema().toBER());
}

function parseTimeStampReq(body: Buffer): TokenRequest {
  const asn1 = asn1js.fromBER(new Uint8Array(body));
  if (body.length === 0 || asn1.offset !== body.length) {
    throw new TsaRefusal('badDataFormat', 'the request is not one DER TimeStampReq');
  }
  let req: pkijs.TimeStampReq;
  try {
    req = new pkijs.TimeStampReq({ schema: asn1.result });
  } catch {
    throw new TsaRefusal('badDataFormat', 'the request is not a TimeStampReq');
  }
  if (req.version !== 1)
    throw new TsaRefusal('badDataFormat', `TimeStampReq version ${req.version} is not v1`);
  if (req.extensions !== undefined && req.extensions.length > 0) {
    throw new TsaRefusal('unacceptedExtension', 'the TSA supports no request extensions');
  }
  if (req.reqPolicy !== undefined && req.reqPolicy !== TSA_POLICY_OID) {
    throw new TsaRefusal('unacceptedPolicy', `policy ${req.reqPolicy} is not ${TSA_POLICY_OID}`);
  }
  const alg = req.messageImprint.hashAlgorithm;
  const params = alg.algorithmParams as asn1js.AsnType | undefined;
  if (params !== undefined && !(params instanceof asn1js.Null)) {
    throw new TsaRefusal('badDataFormat', 'hash algorithm parameters must be absent or NULL');
  }
  const hashedMessage = Buffer.from(req.messageImprint.hashedMessage.valueBlock.valueHexView);
  checkImprint(alg.algorithmId, hashedMessage);
  const nonce = req.nonce?.valueBlock.valueHexView;
  if (nonce !== undefined && nonce.length > 64)
    throw new TsaRefusal('badDataFormat', 'nonce longer than 64 bytes');
  return {
    hashAlgorithmOid: alg.algorithmId,
    hashedMessage,
    nonce: nonce === undefined ? undefined : new Uint8Array(nonce),
    certReq: req.certReq === true,
  };
}

function signTstInfo(pki: PkiMaterial, tsa: TsaSigner, tstDer: Buffer, certReq: boolean): pkijs.SignedData {
  const sha256 = () => new pkijs.AlgorithmIdentifier({ algorithmId: SHA256_OID });
  const attributes = [
    new pkijs.Attribute({
      type: CONTENT_TYPE_ATTR,
      values: [new asn1js.ObjectIdentifier({ value: TST_INFO_OID })],
    }),
    new pkijs.Attribute({
      type: MESSAGE_DIGEST_ATTR,
      values: [new asn1js.OctetString({ valueHex: createHash('sha256').update(tstDer).digest() })],
    }),
    new pkijs.Attribute({ type: SIGNING_CERTIFICATE_V2_ATTR, values: [signingCertificateV2(tsa)] }),
  ];
  // DER: a SET OF sorts its elements' encodings; pkijs keeps the order it is given.
  const encoded = attributes.map((a) => ({ a, der: Buffer.from(a.toSchema().toBER()) }));
  encoded.sort((x, y) => compareDer(x.der, y.der));
  const sorted = encoded.map((e) => e.a);
  const toSign = Buffer.from(new asn1js.Set({ value: sorted.map((a) => a.toSchema()) }).toBER());
  const signature = sign('sha256', toSign, tsa.key); // ECDSA-Sig-Value (DER), as CMS wants
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({
      issuer: tsa.cert.issuer,
      serialNumber: new asn1js.Integer({ valueHex: tsa.cert.serialNumber.valueBlock.valueHexView }),
    }),
    digestAlgorithm: sha256(),
    signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: sorted }),
    signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_WITH_SHA256_OID }),
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  // Set after construction: pkijs's constructor turns an eContent into a constructed OCTET STRING,
  // which is BER, not the DER a token must be (and pkijs's own verify then cannot read the TSTInfo).
  const encapContentInfo = new pkijs.EncapsulatedContentInfo({ eContentType: TST_INFO_OID });
  encapContentInfo.eContent = new asn1js.OctetString({ valueHex: tstDer });
  return new pkijs.SignedData({
    version: 3,
    digestAlgorithms: [sha256()],
    encapContentInfo,
    ...(certReq ? { certificates: [tsa.cert, pki.root.cert] } : {}),
    signerInfos: [signerInfo],
  });
}

/** SigningCertificateV2 { certs: [ESSCertIDv2 { certHash: SHA-256 (the default), issuerSerial }] }
 * (RFC 5035; pkijs has no class for it). */
function signingCertificateV2(tsa: TsaSigner): asn1js.Sequence {
  const issuerSerial = new asn1js.Sequence({
    value: [
      new pkijs.GeneralNames({
        names: [new pkijs.GeneralName({ type: 4, value: tsa.cert.issuer })],
      }).toSchema(),
      new asn1js.Integer({ valueHex: tsa.cert.serialNumber.valueBlock.valueHexView }),
    ],
  });
  const essCertIdV2 = new asn1js.Sequence({
    value: [
      new asn1js.OctetString({ valueHex: createHash('sha256').update(tsa.certDer).digest() }),
      issuerSerial,
    ],
  });
  return new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [essCertIdV2] })] });
}

/** X.690 11.6: SET OF elements in ascending order of their encodings, the shorter padded with zeros. */
function compareDer(a: Buffer, b: Buffer): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A BIT STRING with one named bit set, trailing zero bits dropped (DER for NamedBitList). */
function namedBit(bit: number): asn1js.BitString {
  const bytes = new Uint8Array(Math.floor(bit / 8) + 1);
  bytes[bytes.length - 1] = 0x80 >> (bit % 8);
  return new asn1js.BitString({ valueHex: bytes, unusedBits: 7 - (bit % 8) });
}

/** 16 random bytes, top bit clear (a positive INTEGER): unique per token without shared state. */
function positiveSerial(): Uint8Array {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return new Uint8Array(bytes);
}
