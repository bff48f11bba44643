// Small byte helpers shared by the pdf modules. A PreparedPdf that crossed a worker-thread boundary
// arrives as a plain Uint8Array (structured clone drops the Buffer prototype), so inputs are viewed as
// Buffers without copying.

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const LATIN1 = 'latin1';

/** Index of `needle` (ASCII) in `haystack` from `from`, or -1. */
export function indexOfAscii(haystack: Buffer, needle: string, from = 0): number {
  return haystack.indexOf(needle, from, LATIN1);
}

/** Last index of `needle` (ASCII) in `haystack` at or before `from`, or -1. */
export function lastIndexOfAscii(haystack: Buffer, needle: string, from?: number): number {
  return haystack.lastIndexOf(needle, from ?? haystack.length, LATIN1);
}

export function isPdfWhitespace(byte: number | undefined): boolean {
  // PDF 32000-1 §7.2.2: NUL, HT, LF, FF, CR, SP
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09 || byte === 0x0c || byte === 0x00;
}
