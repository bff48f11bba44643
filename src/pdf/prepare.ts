// Step 1 of sealing: append ONE incremental update with a signature field and an empty placeholder,
// fix the ByteRange, and hash the signed ranges. A pure function of bytes so it can run in a worker
// thread; the result is small and structured-clone safe (bytes arrive on the other side as Uint8Array).
// Inputs that cannot take a seal are refused here with a PdfError naming why: empty, not a PDF,
// encrypted, or certified (or field-locked) so that any seal would break an earlier signature.
import { createHash } from 'node:crypto';
import { type DocumentSnapshot, EncryptedPDFError, ParseSpeeds, PDFDocument, PDFRef } from 'pdf-lib';
import { asBuffer, indexOfAscii, isPdfWhitespace, lastIndexOfAscii } from './bytes';
import { fillSignatureField } from './fill-signature-field';
import { DEFAULT_MAX_INFLATED_BYTES, PdfLimitError, withInflateBudget } from './inflate-limit';
import {
  chooseSealTarget,
  type MdpPermission,
  readModificationPermissions,
} from './modification-permissions';
import { PdfError } from './pdf-error';
import {
  type AddedSignatureField,
  addSignatureField,
  BYTE_RANGE_PLACEHOLDER,
  type SignatureFieldOptions,
} from './signature-field';

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
  /**
   * For certified inputs with more than one empty signature field: the one the seal goes into. Not
   * needed when there is one; ignored for uncertified inputs, which always get a new field.
   */
  certifiedFieldName?: string;
}

/** Where the placeholder is: all that embedding a CMS needs. */
export interface PlaceholderLayout {
  /** The input followed by one incremental update carrying the (still empty) placeholder. */
  bytes: Buffer;
  /** [0, start of /Contents hex string, end of it, rest of file]. */
  byteRange: [number, number, number, number];
  /** SHA-256 of bytes[0..byteRange[1]) || bytes[byteRange[2]..end). */
  contentDigest: Buffer;
  inputLength: number;
  signatureBytes: number;
}

export interface PreparedPdf extends PlaceholderLayout {
  /** The signature field the seal went into. */
  fieldName: string;
  /** True when a certified input's own empty signature field was filled instead of adding one. */
  filledExistingField: boolean;
  /** The /P of the filled field's /Lock: once sealed, the document permits only these changes. */
  lockPermission?: MdpPermission;
}

/** What a placement step put into the document: the signature dictionary and its field. */
export interface PlacedSignature extends AddedSignatureField {
  filledExistingField: boolean;
  lockPermission?: MdpPermission;
}

export const ENCRYPTED_INPUT_MESSAGE = 'input PDF is encrypted: encrypted PDFs cannot be sealed';
const ENCRYPT_KEY = /\/Encrypt(?![A-Za-z0-9])/;

/** The digest of a byte range, as the messageDigest signed attribute must carry it. */
export function digestByteRange(bytes: Buffer, byteRange: readonly [number, number, number, number]): Buffer {
  const [s1, l1, s2, l2] = byteRange;
  return createHash('sha256')
    .update(bytes.subarray(s1, s1 + l1))
    .update(bytes.subarray(s2, s2 + l2))
    .digest();
}

/** Offset of the newest cross-reference section, as the last startxref states it. */
function startXref(input: Buffer): number {
  const at = lastIndexOfAscii(input, 'startxref');
  if (at < 0) throw new PdfError('input PDF has no startxref: not a PDF or truncated');
  const match = /startxref\s+(\d+)/.exec(input.toString('latin1', at, Math.min(input.length, at + 40)));
  if (!match?.[1]) throw new PdfError(`input PDF has an unreadable startxref at offset ${at}`);
  return Number(match[1]);
}

/** True when the newest cross-reference section is a stream, so the update should be one as well. */
function lastXrefIsStream(input: Buffer, offset: number): boolean {
  return input.toString('latin1', offset, offset + 4) !== 'xref';
}

/**
 * Whether the newest trailer (the xref table's trailer, or the xref stream's dictionary: never itself
 * encrypted) names an /Encrypt dictionary. Checked before pdf-lib parses anything, since what it does
 * with encrypted objects is to throw its own hint or to decode ciphertext as if it were Flate.
 */
function trailerNamesEncrypt(input: Buffer, offset: number): boolean {
  // Only where startxref really points at a section: a stray offset could take in page content.
  const section = offset > 0 && /^(xref|\d+\s+\d+\s+obj)/.test(input.toString('latin1', offset, offset + 32));
  return section && ENCRYPT_KEY.test(input.toString('latin1', offset));
}

function checkNotEmpty(input: Buffer): void {
  if (input.length === 0) throw new PdfError('input PDF is empty (0 bytes)');
  if (input.every((byte) => isPdfWhitespace(byte))) {
    throw new PdfError(`input PDF is empty (0 bytes besides ${input.length} bytes of whitespace)`);
  }
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

/**
 * The snapshot without the catalog when the placement left it as it was. pdf-lib marks the catalog
 * changed whenever it starts an update; rewriting it unchanged is harmless to the bytes but is one
 * more object that a validator's difference analysis must prove innocent after a certification.
 */
function unchangedCatalog(doc: PDFDocument, snapshot: DocumentSnapshot): DocumentSnapshot {
  const root = doc.context.trailerInfo.Root;
  if (!(root instanceof PDFRef)) return snapshot;
  // Delegates everything else (pdfSize, prevStartXRef, deleted refs) to pdf-lib's own snapshot.
  return Object.create(snapshot, {
    shouldSave: {
      value: (objectNumber: number) =>
        objectNumber !== root.objectNumber && snapshot.shouldSave(objectNumber),
    },
  }) as DocumentSnapshot;
}

/** The default placement: a new field, or for a certified input its empty signature field. */
function placeSeal(doc: PDFDocument, field: SignatureFieldOptions, fieldName?: string): PlacedSignature {
  const target = chooseSealTarget(readModificationPermissions(doc), { fieldName });
  if (target.kind === 'existing-field') {
    return { ...fillSignatureField(doc, target.field, field), filledExistingField: true };
  }
  return { ...addSignatureField(doc, field), filledExistingField: false };
}

export function preparePdf(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
  return appendSignatureUpdate(inputBytes, options, (doc, field) =>
    placeSeal(doc, field, options.certifiedFieldName),
  );
}

/**
 * preparePdf with the placement step supplied: test fixtures use it to write a certification
 * signature through the same checks, writer and ByteRange layout. Not part of the pdf part's API.
 */
export async function appendSignatureUpdate(
  inputBytes: Uint8Array,
  options: PrepareOptions,
  place: (doc: PDFDocument, field: SignatureFieldOptions) => PlacedSignature,
): Promise<PreparedPdf> {
  const input = asBuffer(inputBytes);
  checkNotEmpty(input);
  const signatureBytes = options.signatureBytes ?? DEFAULT_SIGNATURE_BYTES;
  checkSignatureBytes(signatureBytes);
  if (!(options.signingTime instanceof Date) || Number.isNaN(options.signingTime.getTime())) {
    throw new PdfError('signingTime must be a valid Date');
  }
  checkInput(input);
  const xrefAt = startXref(input);
  if (trailerNamesEncrypt(input, xrefAt)) throw new PdfError(ENCRYPTED_INPUT_MESSAGE);
  const useObjectStreams = lastXrefIsStream(input, xrefAt);

  let doc: PDFDocument;
  try {
    doc = await withInflateBudget(options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES, () =>
      PDFDocument.load(input, {
        forIncrementalUpdate: true,
        updateMetadata: false, // a new /ModDate or /Producer would make the update depend on the clock
        parseSpeed: ParseSpeeds.Fastest,
        ignoreEncryption: true, // refused below in our words, not with pdf-lib's hint
      }),
    );
  } catch (cause) {
    if (cause instanceof PdfLimitError) throw cause; // over the inflate cap: that is the reason
    // A startxref that points astray hides the trailer from the check above; a failed parse of an
    // encrypted file is still reported as encrypted (a byte search: this path is rare, files large).
    if (cause instanceof EncryptedPDFError || input.includes('/Encrypt', 0, 'latin1')) {
      throw new PdfError(ENCRYPTED_INPUT_MESSAGE, { cause });
    }
    if (cause instanceof PdfError) throw cause; // the cap itself invalid, or a malformed stream filter
    throw new PdfError(`input PDF could not be parsed: ${(cause as Error).message}`, { cause });
  }
  if (doc.isEncrypted) throw new PdfError(ENCRYPTED_INPUT_MESSAGE);
  if (doc.getPageCount() === 0) throw new PdfError('input PDF has no pages to attach the seal field to');

  // load({ forIncrementalUpdate }) already took the snapshot that pdf-lib records changes against;
  // a second takeSnapshot() would start an empty one and the update would miss the catalog and page.
  const snapshot = doc.context.snapshot;
  if (!snapshot) throw new PdfError('pdf-lib did not start an incremental update for the input');
  const catalogBefore = doc.catalog.toString();
  const field = place(doc, {
    signingTime: options.signingTime,
    signatureBytes,
    subFilter: SUBFILTER_ETSI_CADES_DETACHED,
    reason: options.reason,
    name: options.name,
    location: options.location,
    contactInfo: options.contactInfo,
  });

  let update: Uint8Array;
  try {
    const written = doc.catalog.toString() === catalogBefore ? unchangedCatalog(doc, snapshot) : snapshot;
    update = await doc.saveIncremental(written, { useObjectStreams, objectsPerTick: Infinity });
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
    fieldName: field.fieldName,
    filledExistingField: field.filledExistingField,
    ...(field.lockPermission === undefined ? {} : { lockPermission: field.lockPermission }),
  };
}
