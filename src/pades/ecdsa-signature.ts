// CSC providers return ECDSA signatures either as DER ECDSA-Sig-Value or as raw r||s; a CMS must carry
// DER (pdfsig calls a raw one "Signature is Invalid"). This normalises either form, strictly.
import { PadesError } from './pades-error';

/** Raw r||s lengths accepted: P-256, P-384, P-521. */
const RAW_LENGTHS = new Set([64, 96, 132]);

/** Minimal DER INTEGER for an unsigned big-endian value. */
function derUnsignedInteger(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  let body = value.subarray(i);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

/** Reads one DER INTEGER at `at`; returns its end offset, or -1 if it is not a minimal positive INTEGER. */
function readPositiveInteger(sig: Buffer, at: number, limit: number): number {
  if (sig[at] !== 0x02 || at + 2 > limit) return -1;
  const len = sig[at + 1]!;
  if (len === 0 || len > 0x7f || at + 2 + len > limit) return -1;
  const first = sig[at + 2]!;
  if (first & 0x80) return -1; // negative
  if (first === 0 && (len === 1 || !(sig[at + 3]! & 0x80))) return -1; // zero or non-minimal
  return at + 2 + len;
}

/** True when `sig` is exactly SEQUENCE { INTEGER r, INTEGER s } in DER, both positive and minimal. */
export function isDerEcdsaSignature(sig: Buffer): boolean {
  if (sig.length < 8 || sig[0] !== 0x30) return false;
  let at: number;
  let end: number;
  if (sig[1]! < 0x80) {
    at = 2;
    end = 2 + sig[1]!;
  } else if (sig[1] === 0x81 && sig[2]! >= 0x80) {
    at = 3;
    end = 3 + sig[2]!;
  } else {
    return false;
  }
  if (end !== sig.length) return false;
  const afterR = readPositiveInteger(sig, at, end);
  return afterR > 0 && readPositiveInteger(sig, afterR, end) === end;
}

/** DER ECDSA-Sig-Value from DER (validated, returned as is) or raw r||s (64 bytes for P-256). */
export function ecdsaSignatureToDer(sig: Uint8Array): Buffer {
  const buf = Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength);
  if (isDerEcdsaSignature(buf)) return buf;
  if (!RAW_LENGTHS.has(buf.length)) {
    throw new PadesError(
      `ECDSA signature of ${buf.length} bytes is neither DER ECDSA-Sig-Value nor raw r||s (64/96/132 bytes)`,
    );
  }
  const half = buf.length / 2;
  const r = buf.subarray(0, half);
  const s = buf.subarray(half);
  if (r.every((b) => b === 0) || s.every((b) => b === 0)) {
    throw new PadesError('raw ECDSA signature has r or s = 0');
  }
  const body = Buffer.concat([derUnsignedInteger(r), derUnsignedInteger(s)]);
  const header =
    body.length < 0x80 ? Buffer.from([0x30, body.length]) : Buffer.from([0x30, 0x81, body.length]);
  return Buffer.concat([header, body]);
}
