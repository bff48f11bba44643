// Just enough DER to splice per-invoice values around parts encoded once per credential, and to walk a
// CMS without building an object tree. Definite lengths only: what we write and what verifiers need.

/** The DER header (tag + length) for `length` content bytes. */
export function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** tag || length || concatenated contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  let length = 0;
  for (const c of contents) length += c.length;
  const header = derHeader(tag, length);
  return Buffer.concat([header, ...contents], header.length + length);
}

/** X.690 §11.6: SET OF elements ascend as octet strings, the shorter padded with zero octets. */
export function compareDer(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  const c = a.compare(b, 0, n, 0, n);
  if (c !== 0) return c;
  const [longer, sign] = a.length > b.length ? [a, 1] : [b, -1];
  for (let i = n; i < longer.length; i++) if (longer[i] !== 0) return sign;
  return 0;
}

export function derSetOf(tag: number, elements: Buffer[]): Buffer {
  return tlv(tag, ...[...elements].sort(compareDer));
}

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the element. */
  end: number;
}

export class DerError extends Error {}

export function readTlv(buf: Buffer, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError(`truncated element at offset ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  const first = buf[offset + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at offset ${offset} (BER, not DER)`);
    if (count > 4 || offset + 2 + count > limit) throw new DerError(`bad length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i]!;
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError(`element at offset ${offset} runs past its container`);
  return { tag, start: offset, contentStart, end };
}

/** The children of a constructed element. */
export function readChildren(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const child = readTlv(buf, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function bytesOf(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}

export function contentOf(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.contentStart, t.end);
}

/** Dotted form of an OBJECT IDENTIFIER's content bytes. */
export function decodeOid(content: Buffer): string {
  const parts: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (parts.length === 0)
        parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0: 0xa0,
  CONTEXT_1: 0xa1,
} as const;
