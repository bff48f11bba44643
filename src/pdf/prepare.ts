// Step 1 of sealing: append ONE incremental update with a signature field and an empty placeholder,
// fix the ByteRange, and hash the signed ranges. A pure function of bytes so it can run in a worker
// thread; the result is small and structured-clone safe (bytes arrive on the other side as Uint8Array).
import { createHash } from 'node:crypto';
import { asBuffer } from './bytes';
import { loadForUpdate, writeUpdate, type LoadedForUpdate } from './incremental-update';
import { PdfError } from './pdf-error';
import { addSignatureField, BYTE_RANGE_PLACEHOLDER, type SignatureFieldOptions } from './signature-field';

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

function checkSignatureBytes(n: number): void {
  if (!Number.isInteger(n) || n < MIN_SIGNATURE_BYTES || n > MAX_SIGNATURE_BYTES) {
    throw new PdfError(
      `signatureBytes must be an integer from ${MIN_SIGNATURE_BYTES} to ${MAX_SIGNATURE_BYTES}, got ${n}`,
    );
  }
}

export async function preparePdf(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
  const input = asBuffer(inputBytes);
  if (!(options.signingTime instanceof Date) || Number.isNaN(options.signingTime.getTime())) {
    throw new PdfError('signingTime must be a valid Date');
  }
  return appendPlaceholder(
    input,
    {
      signingTime: options.signingTime,
      signatureBytes: options.signatureBytes ?? DEFAULT_SIGNATURE_BYTES,
      subFilter: SUBFILTER_ETSI_CADES_DETACHED,
      reason: options.reason,
      name: options.name,
      location: options.location,
      contactInfo: options.contactInfo,
    },
    options.maxInflatedBytes,
  );
}

/**
 * One incremental update with a new signature field whose value is `field`'s dictionary, its
 * ByteRange filled in and the ranges hashed. Shared by preparePdf and prepareDocTimestamp.
 */
export async function appendPlaceholder(
  input: Buffer,
  field: SignatureFieldOptions,
  maxInflatedBytes: number | undefined,
  /** Further changes to the same update (e.g. a catalog entry), made before the field is added. */
  edit?: (loaded: LoadedForUpdate) => void,
): Promise<PreparedPdf> {
  const { signatureBytes } = field;
  checkSignatureBytes(signatureBytes);
  const loaded = await loadForUpdate(input, maxInflatedBytes);
  if (loaded.doc.getPageCount() === 0) {
    throw new PdfError('input PDF has no pages to attach the seal field to');
  }
  edit?.(loaded);
  const added = addSignatureField(loaded.doc, field);
  const bytes = await writeUpdate(loaded);

  const dictAt = bytes.indexOf(added.dictBytes, input.length);
  if (dictAt < 0) throw new PdfError('signature dictionary not found in the written update');
  const contentsAt = dictAt + added.dictBytes.indexOf('/Contents <', 0, 'latin1') + '/Contents '.length;
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
