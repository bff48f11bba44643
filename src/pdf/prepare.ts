// Step 1 of sealing: append ONE incremental update with a signature field and an empty placeholder,
// fix the ByteRange, and hash the signed ranges. A pure function of bytes so it can run in a worker
// thread; the result is small and structured-clone safe (bytes arrive on the other side as Uint8Array).
import { createHash } from 'node:crypto';
import { ParseSpeeds, PDFDocument } from 'pdf-lib';
import { asBuffer, indexOfAscii, lastIndexOfAscii } from './bytes';
import { DEFAULT_MAX_INFLATED_BYTES, withInflateBudget } from './inflate-limit';
import { PdfError } from './pdf-error';
import { buildSealAppearance, type SealAppearance } from './seal-appearance';
import { addSignatureField, BYTE_RANGE_PLACEHOLDER } from './signature-field';

export const SUBFILTER_ETSI_CADES_DETACHED = 'ETSI.CAdES.detached';
export const DEFAULT_SIGNATURE_BYTES = 8192;
const MIN_SIGNATURE_BYTES = 256;
const MAX_SIGNATURE_BYTES = 1024 * 1024;

export interface PrepareOptions {
  /** Written as the signature dictionary's /M; also what a B-B validator shows as the claimed time. */
  signingTime: Date;
  reason?: string;
  location?: string;
  /** The sealing organisation's name as /Name (validators show the certificate subject anyway). */
  name?: string;
  contactInfo?: string;
  /** Bytes reserved for the DER CMS (the placeholder holds twice as many hex digits). Default 8192. */
  signatureBytes?: number;
  /** Most bytes loading the input may inflate (object and xref streams), against decompression bombs. */
  maxInflatedBytes?: number;
  /** A visible company seal where the widget sits. Default: none, an invisible /Rect [0 0 0 0]. */
  appearance?: SealAppearance;
}

export interface PreparedPdf {
  /** The input followed by one incremental update carrying the (still empty) placeholder. */
  bytes: Buffer;
  /** [0, start of /Contents hex string, end of it, rest of file]. */
  byteRange: [number, number, number, number];
  /** SHA-256 of bytes[0..byteRange[1]) || bytes[byteRange[2]..end). */
  contentDigest: Buffer;
  inputLength: number;
  signatureBytes: number;
}

/** The digest of a byte range, as the messageDigest signed attribute must carry it. */
export function digestByteRange(bytes: Buffer, byteRange: readonly [number, number, number, number]): Buffer {
  const [s1, l1, s2, l2] = byteRange;
  return createHash('sha256')
    .update(bytes.subarray(s1, s1 + l1))
    .update(bytes.subarray(s2, s2 + l2))
    .digest();
}

/** True when the newest cross-reference section is a stream, so the update should be one as well. */
function lastXrefIsStream(input: Buffer): boolean {
  const at = lastIndexOfAscii(input, 'startxref');
  if (at < 0) throw new PdfError('input PDF has no startxref: not a PDF or truncated');
  const match = /startxref\s+(\d+)/.exec(input.toString('latin1', at, Math.min(input.length, at + 40)));
  if (!match?.[1]) throw new PdfError(`input PDF has an unreadable startxref at offset ${at}`);
  const offset = Number(match[1]);
  return input.toString('latin1', offset, offset + 4) !== 'xref';
}

function checkInput(input: Buffer): void {
  const head = indexOfAscii(input.subarray(0, 1024), '%PDF-');
  if (head < 0) throw new PdfError('input is not a PDF: no %PDF- header in the first 1024 bytes');
  if (lastIndexOfAscii(input.subarray(Math.max(0, input.length - 2048)), '%%EOF') < 0) {
    throw new PdfError('input PDF has no %%EOF in its last 2048 bytes: truncated?');
  }
}

function checkSignatureBytes(n: number): void {
  if (!Number.isInteger(n) || n < MIN_SIGNATURE_BYTES || n > MAX_SIGNATURE_BYTES) {
    throw new PdfError(
      `signatureBytes must be an integer from ${MIN_SIGNATURE_BYTES} to ${MAX_SIGNATURE_BYTES}, got ${n}`,
    );
  }
}

export async function preparePdf(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
  const input = asBuffer(inputBytes);
  const signatureBytes = options.signatureBytes ?? DEFAULT_SIGNATURE_BYTES;
  checkSignatureBytes(signatureBytes);
  if (!(options.signingTime instanceof Date) || Number.isNaN(options.signingTime.getTime())) {
    throw new PdfError('signingTime must be a valid Date');
  }
  checkInput(input);
  const useObjectStreams = lastXrefIsStream(input);

  let doc: PDFDocument;
  try {
    doc = await withInflateBudget(options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES, () =>
      PDFDocument.load(input, {
        forIncrementalUpdate: true,
        updateMetadata: false, // a new /ModDate or /Producer would make the update depend on the clock
        parseSpeed: ParseSpeeds.Fastest,
      }),
    );
  } catch (cause) {
    if (cause instanceof PdfError) throw cause; // over the inflate cap, or the cap itself invalid
    throw new PdfError(`input PDF could not be parsed: ${(cause as Error).message}`, { cause });
  }
  if (doc.isEncrypted) throw new PdfError('input PDF is encrypted; sealing encrypted PDFs is not supported');
  if (doc.getPageCount() === 0) throw new PdfError('input PDF has no pages to attach the seal field to');

  // load({ forIncrementalUpdate }) already took the snapshot that pdf-lib records changes against;
  // a second takeSnapshot() would start an empty one and the update would miss the catalog and page.
  const snapshot = doc.context.snapshot;
  if (!snapshot) throw new PdfError('pdf-lib did not start an incremental update for the input');
  const appearance = options.appearance && (await buildSealAppearance(doc, options.appearance));
  const field = addSignatureField(doc, {
    signingTime: options.signingTime,
    signatureBytes,
    subFilter: SUBFILTER_ETSI_CADES_DETACHED,
    reason: options.reason,
    name: options.name,
    location: options.location,
    contactInfo: options.contactInfo,
    appearance,
  });

  let update: Uint8Array;
  try {
    update = await doc.saveIncremental(snapshot, { useObjectStreams, objectsPerTick: Infinity });
  } catch (cause) {
    throw new PdfError(`incremental update could not be written: ${(cause as Error).message}`, { cause });
  }

  // Concatenated here rather than by pdf-lib so the input is a prefix by construction.
  const bytes = Buffer.concat([input, update]);
  const dictAt = bytes.indexOf(field.dictBytes, input.length);
  if (dictAt < 0) throw new PdfError('signature dictionary not found in the written update');
  const contentsAt = dictAt + field.dictBytes.indexOf('/Contents <', 0, 'latin1') + '/Contents '.length;
  const contentsEnd = contentsAt + 2 + signatureBytes * 2;
  const byteRange: [number, number, number, number] = [
    0,
    contentsAt,
    contentsEnd,
    bytes.length - contentsEnd,
  ];

  const placeholderAt = bytes.indexOf(`/${BYTE_RANGE_PLACEHOLDER}`, dictAt, 'latin1');
  const arrayStart = bytes.lastIndexOf('[', placeholderAt, 'latin1');
  const arrayEnd = bytes.indexOf(']', placeholderAt, 'latin1') + 1;
  const filled = `[0 ${byteRange[1]} ${byteRange[2]} ${byteRange[3]}]`;
  const room = arrayEnd - arrayStart;
  if (filled.length > room) {
    throw new PdfError(`ByteRange ${filled} does not fit its ${room}-byte placeholder`);
  }
  bytes.write(filled.slice(0, -1).padEnd(room - 1, ' ') + ']', arrayStart, 'latin1');

  return {
    bytes,
    byteRange,
    contentDigest: digestByteRange(bytes, byteRange),
    inputLength: input.length,
    signatureBytes,
  };
}
