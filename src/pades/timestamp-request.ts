// The two RFC 3161 messages the client exchanges: the TimeStampReq it sends and the TimeStampResp it
// gets back, both through pkijs. Reading a response stops at its status and hands on the token's
// bytes exactly as received (they are embedded as they are, so nothing is re-encoded).
import { randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { readTlv } from './der';
import { OID } from './oids';
import { TimestampError } from './timestamp-error';

const SHA256_LENGTH = 32;

export interface TimeStampReqInput {
  /** SHA-256 of the data to be stamped. */
  digest: Buffer;
  /** Unsigned big-endian value; sent as a positive INTEGER. */
  nonce: Buffer;
  /** TSA policy to ask for; the TSA's default when absent. */
  policyOid?: string;
  /** Ask the TSA to put its certificate in the token. */
  certReq: boolean;
}

/** Minimal big-endian magnitude of an unsigned value (no leading zero bytes; [0] for zero). */
export function unsignedMagnitude(value: Uint8Array): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return Buffer.from(value.subarray(i));
}

/** A fresh 128-bit nonce: top bit clear (positive) and second bit set (minimal DER, full length). */
export function newNonce(): Buffer {
  const nonce = randomBytes(16);
  nonce[0] = (nonce[0]! & 0x7f) | 0x40;
  return nonce;
}

export function buildTimeStampReq(input: TimeStampReqInput): Buffer {
  if (input.digest.length !== SHA256_LENGTH) {
    throw new TimestampError(
      'invalid',
      `timestamp digest must be a ${SHA256_LENGTH}-byte SHA-256, got ${input.digest.length} bytes`,
    );
  }
  const magnitude = unsignedMagnitude(input.nonce);
  if (input.nonce.length === 0 || (magnitude.length === 1 && magnitude[0] === 0)) {
    throw new TimestampError('invalid', 'timestamp nonce must be a non-zero value');
  }
  // An INTEGER is signed: a magnitude with its top bit set needs a zero byte in front to stay positive.
  const nonceHex = magnitude[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude;
  const req = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      // RFC 5754: SHA-2 identifiers are sent without parameters.
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha256 }),
      hashedMessage: new asn1js.OctetString({ valueHex: new Uint8Array(input.digest) }),
    }),
    nonce: new asn1js.Integer({ valueHex: new Uint8Array(nonceHex) }),
    ...(input.policyOid ? { reqPolicy: input.policyOid } : {}),
    // certReq is BOOLEAN DEFAULT FALSE: DER leaves a false one out.
    ...(input.certReq ? { certReq: true } : {}),
  });
  return Buffer.from(req.toSchema().toBER(false));
}

const STATUS_NAMES = [
  'granted',
  'grantedWithMods',
  'rejection',
  'waiting',
  'revocationWarning',
  'revocationNotification',
];

/** PKIFailureInfo bit names (RFC 3161 §2.4.2), by bit number. */
const FAIL_INFO_NAMES: Readonly<Record<number, string>> = {
  0: 'badAlg',
  2: 'badRequest',
  5: 'badDataFormat',
  14: 'timeNotAvailable',
  15: 'unacceptedPolicy',
  16: 'unacceptedExtension',
  17: 'addInfoNotAvailable',
  25: 'systemFailure',
};

/** Failures a TSA reports about itself rather than about the request: worth another try. */
const TRANSIENT_FAIL_INFO = new Set(['timeNotAvailable', 'systemFailure']);

function failInfoNames(bits: asn1js.BitString | undefined): string[] {
  if (!bits) return [];
  const bytes = bits.valueBlock.valueHexView;
  const names: string[] = [];
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) names.push(FAIL_INFO_NAMES[bit] ?? `bit ${bit}`);
  }
  return names;
}

/**
 * The TimeStampToken of a granted (0) or grantedWithMods (1) response, as the bytes received.
 * Anything else throws TimestampError naming the status, the TSA's text and the failInfo bits:
 * 'transient' for waiting or a TSA-side failure (timeNotAvailable, systemFailure), else 'refused'.
 */
export function readTimeStampResp(der: Buffer): { tokenDer: Buffer } {
  let outer;
  let resp: pkijs.TimeStampResp;
  try {
    outer = readTlv(der, 0);
    if (outer.end !== der.length) throw new Error('trailing bytes after the TimeStampResp');
    resp = pkijs.TimeStampResp.fromBER(new Uint8Array(der));
  } catch (cause) {
    throw new TimestampError('invalid', `TSA reply is not a DER TimeStampResp: ${(cause as Error).message}`, {
      cause,
    });
  }
  const status = resp.status.status as number;
  if (status !== 0 && status !== 1) {
    const name = STATUS_NAMES[status] ?? `status ${status}`;
    const text = (resp.status.statusStrings ?? []).map((s) => s.valueBlock.value).join('; ');
    const fails = failInfoNames(resp.status.failInfo);
    const transient = status === 3 || fails.some((f) => TRANSIENT_FAIL_INFO.has(f));
    throw new TimestampError(
      transient ? 'transient' : 'refused',
      `TSA did not grant the timestamp: ${name}${text ? ` "${text}"` : ''}` +
        (fails.length ? ` (failInfo ${fails.join(', ')})` : ''),
    );
  }
  // The token's own bytes: asn1js keeps each element's encoding as it was read.
  const parsed = asn1js.fromBER(new Uint8Array(der));
  const token = (parsed.result as asn1js.Sequence).valueBlock.value[1];
  if (!resp.timeStampToken || !token) {
    throw new TimestampError('invalid', 'TSA granted the timestamp but sent no TimeStampToken');
  }
  return { tokenDer: Buffer.from(token.valueBeforeDecodeView) };
}
