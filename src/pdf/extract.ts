// Finds the signatures in a PDF by their /ByteRange arrays and returns each one's CMS and signed bytes.
// A byte scan rather than a full parse: it is synchronous, fast, and sees every revision's signature
// dictionary (which may not be in an object stream, since the ByteRange must address the file itself).
import { asBuffer, indexOfAscii, isPdfWhitespace, lastIndexOfAscii } from './bytes';

export interface EmbeddedSignature {
  byteRange: [number, number, number, number];
  /** The CMS with the placeholder's zero padding removed; empty when nothing usable was found. */
  cmsDer: Buffer;
  /**
   * The whole /Contents string decoded, zero padding included: what a DSS VRI key hashes (see
   * dss.ts vriKey). Empty when the hex string is malformed.
   */
  contents: Buffer;
  /** The /SubFilter of the signature dictionary ('ETSI.CAdES.detached', 'ETSI.RFC3161', ...), '' when absent. */
  subFilter: string;
  /** The /Type of the signature dictionary: 'Sig', 'DocTimeStamp' (a document timestamp), '' when absent. */
  type: string;
  /** ByteRange starts at 0, leaves out exactly the /Contents string and ends at the end of the file. */
  coversWholeDocument: boolean;
  /** The two ranges concatenated: what the CMS signs. */
  signedBytes: Buffer;
  /** Structural faults found while reading (bad range, gap that is not /Contents, bad hex, ...). */
  problems: string[];
}

const BYTE_RANGE_ARRAY = /^\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]/;
const HEX = /^[0-9a-fA-F]*$/;

/** Length of the DER/BER element at the start of `der`, or undefined for indefinite/garbled lengths. */
function elementLength(der: Buffer): number | undefined {
  if (der.length < 2) return undefined;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der.length < 2 + count) return undefined;
  let len = 0;
  for (let i = 0; i < count; i++) len = len * 256 + der[2 + i]!;
  return 2 + count + len;
}

let zeros = Buffer.alloc(0);

function isAllZero(buf: Buffer, from: number): boolean {
  const n = buf.length - from;
  if (zeros.length < n) zeros = Buffer.alloc(n);
  return buf.compare(zeros, 0, n, from) === 0;
}

/** The name value of `/key` in the object enclosing offset `at`, '' when absent. */
function readName(pdf: Buffer, at: number, key: string): string {
  // The enclosing object: from the previous endobj to the next one. The signature dictionary is an
  // object of its own (never in an object stream), so no other dictionary's /Type is in this span.
  const from = Math.max(0, lastIndexOfAscii(pdf, 'endobj', at));
  let to = indexOfAscii(pdf, 'endobj', at);
  if (to < 0) to = pdf.length;
  const span = pdf.subarray(from, to);
  const pattern = new RegExp(`^/${key}\\s*/([^\\s/<>[\\]()]+)`);
  // /Type may also appear as the prefix of another key (/TypeX is not ours): match each occurrence.
  for (let k = indexOfAscii(span, `/${key}`); k >= 0; k = indexOfAscii(span, `/${key}`, k + 1)) {
    const m = pattern.exec(span.toString('latin1', k, k + 80));
    if (m?.[1]) return m[1];
  }
  return '';
}

/** The gap must be exactly the /Contents hex string: nothing else may escape the signature. */
function gapIsContents(pdf: Buffer, start: number, end: number): boolean {
  if (end - start < 2 || pdf[start] !== 0x3c || pdf[end - 1] !== 0x3e) return false;
  let k = start - 1;
  while (k > 0 && isPdfWhitespace(pdf[k])) k--;
  return pdf.toString('latin1', k - 8, k + 1) === '/Contents';
}

/** The decoded /Contents string, padding included, or undefined when it is not well-formed hex. */
function readContents(pdf: Buffer, start: number, end: number, problems: string[]): Buffer | undefined {
  // Fast path: Buffer.from(hex) stops at the first non-hex character, so a short result means whitespace
  // (allowed in PDF hex strings) or garbage, which the slow path sorts out.
  let decoded = Buffer.from(pdf.toString('latin1', start + 1, end - 1), 'hex');
  if (decoded.length * 2 !== end - start - 2) {
    const hex = pdf.toString('latin1', start + 1, end - 1).replace(/\s+/g, '');
    if (!HEX.test(hex) || hex.length % 2 !== 0) {
      problems.push(`/Contents at ${start} is not a well-formed hex string`);
      return undefined;
    }
    decoded = Buffer.from(hex, 'hex');
  }
  return decoded;
}

/** The CMS at the start of decoded /Contents, without the zero padding after it. */
function cmsOf(decoded: Buffer, start: number, problems: string[]): Buffer {
  if (isAllZero(decoded, 0)) {
    problems.push(`/Contents at ${start} is an empty placeholder (never sealed)`);
    return Buffer.alloc(0);
  }
  const length = elementLength(decoded);
  if (length === undefined) return decoded; // BER indefinite length: leave the padding to the parser
  if (length > decoded.length) {
    problems.push(`CMS at ${start} claims ${length} bytes but /Contents holds only ${decoded.length}`);
    return Buffer.alloc(0);
  }
  if (!isAllZero(decoded, length)) problems.push(`/Contents at ${start} has non-zero bytes after the CMS`);
  return decoded.subarray(0, length);
}

export function extractSignatures(pdfBytes: Uint8Array): EmbeddedSignature[] {
  const pdf = asBuffer(pdfBytes);
  const found = new Map<string, EmbeddedSignature>();
  for (let at = indexOfAscii(pdf, '/ByteRange'); at >= 0; at = indexOfAscii(pdf, '/ByteRange', at + 1)) {
    const m = BYTE_RANGE_ARRAY.exec(pdf.toString('latin1', at + 10, at + 90));
    if (!m) continue; // an unfilled placeholder or the word in some other context
    const byteRange = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] as [
      number,
      number,
      number,
      number,
    ];
    const key = byteRange.join(' ');
    if (found.has(key)) continue;

    const [s1, l1, s2, l2] = byteRange;
    const problems: string[] = [];
    let cmsDer: Buffer = Buffer.alloc(0);
    let contents: Buffer = Buffer.alloc(0);
    let signedBytes: Buffer = Buffer.alloc(0);
    let gapOk = false;
    const inBounds = s1 + l1 <= s2 && s2 + l2 <= pdf.length;
    if (!inBounds) {
      problems.push(`ByteRange [${key}] lies outside the ${pdf.length}-byte file or overlaps itself`);
    } else {
      if (s1 !== 0) problems.push(`ByteRange [${key}] does not start at offset 0`);
      gapOk = gapIsContents(pdf, s1 + l1, s2);
      if (gapOk) {
        const decoded = readContents(pdf, s1 + l1, s2, problems);
        if (decoded) {
          contents = decoded;
          cmsDer = cmsOf(decoded, s1 + l1, problems);
        }
      } else problems.push(`ByteRange gap ${s1 + l1}..${s2} is not exactly the /Contents hex string`);
      signedBytes = Buffer.concat([pdf.subarray(s1, s1 + l1), pdf.subarray(s2, s2 + l2)]);
    }
    found.set(key, {
      byteRange,
      cmsDer,
      contents,
      subFilter: readName(pdf, at, 'SubFilter'),
      type: readName(pdf, at, 'Type'),
      coversWholeDocument: gapOk && s1 === 0 && s2 + l2 === pdf.length,
      signedBytes,
      problems,
    });
  }
  // Oldest revision first: a later signature's range always ends further into the file.
  return [...found.values()].sort(
    (a, b) => a.byteRange[2] + a.byteRange[3] - (b.byteRange[2] + b.byteRange[3]),
  );
}
