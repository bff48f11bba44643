// ECDSA signature encodings: CMS needs a DER ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }), but
// CSC providers return either that or the raw r||s concatenation (the spec leaves it open). This module
// tells them apart strictly and turns raw values into DER.

/**
 * True when `sig` is exactly one minimal DER SEQUENCE of two positive INTEGERs, each no longer than
 * `maxIntegerBytes`. A raw r||s value of the same length practically never passes all of these checks.
 */
export function isDerEcdsaSignature(sig: Uint8Array, maxIntegerBytes = 67): boolean {
  if (sig.length < 8 || sig[0] !== 0x30) return false;
  const seq = readLength(sig, 1);
  if (!seq || seq.next + seq.length !== sig.length) return false;
  let off = seq.next;
  for (let i = 0; i < 2; i++) {
    if (sig[off] !== 0x02) return false;
    const int = readLength(sig, off + 1);
    if (!int || int.length < 1 || int.length > maxIntegerBytes || int.next + int.length > sig.length)
      return false;
    const first = sig[int.next]!;
    if (first & 0x80) return false; // negative
    if (first === 0 && (int.length === 1 || (sig[int.next + 1]! & 0x80) === 0)) return false; // not minimal, or zero
    off = int.next + int.length;
  }
  return off === sig.length;
}

/** Encode raw r||s (two equal halves) as a DER ECDSA-Sig-Value. */
export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new RangeError(`a raw ECDSA signature has two equal halves; got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/**
 * Return `sig` as DER. `coordinateBytes` (32 for P-256) makes detection exact: raw is then exactly
 * twice that; without it any even-length non-DER value is taken as raw.
 */
export function normaliseEcdsaSignature(sig: Uint8Array, coordinateBytes?: number): Buffer {
  const maxInt = coordinateBytes === undefined ? 67 : coordinateBytes + 1;
  if (isDerEcdsaSignature(sig, maxInt)) return Buffer.from(sig);
  if (
    coordinateBytes !== undefined
      ? sig.length === 2 * coordinateBytes
      : sig.length % 2 === 0 && sig.length > 0
  ) {
    return rawEcdsaToDer(sig);
  }
  throw new RangeError(
    `ECDSA signature of ${sig.length} bytes is neither DER nor raw r||s` +
      (coordinateBytes === undefined ? '' : ` for a ${coordinateBytes * 8}-bit curve`),
  );
}

function derInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const digits = Buffer.from(bytes.subarray(start));
  const content = digits[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits;
  return Buffer.concat([Buffer.from([0x02]), derLength(content.length), content]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n <= 0xff) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

function readLength(b: Uint8Array, at: number): { length: number; next: number } | undefined {
  const first = b[at];
  if (first === undefined) return undefined;
  if (first < 0x80) return { length: first, next: at + 1 };
  if (first === 0x81) {
    const n = b[at + 1];
    return n === undefined || n < 0x80 ? undefined : { length: n, next: at + 2 };
  }
  return undefined; // no ECDSA signature needs a longer length, and DER forbids other forms here
}
