// Loading a PDF for one incremental update and writing that update: shared by every step that appends
// to a file (signature placeholder, DSS, document timestamp). The output is always the input's bytes
// followed by the update, concatenated here rather than by pdf-lib, so the input is a prefix by
// construction; the update's cross-reference section follows the input's newest one (table or stream).
// Inputs that cannot take an update are refused here in the product's words: empty, not a PDF,
// truncated, encrypted.
import { type DocumentSnapshot, EncryptedPDFError, ParseSpeeds, PDFDocument, PDFRef } from 'pdf-lib';
import { indexOfAscii, isPdfWhitespace, lastIndexOfAscii } from './bytes';
import { DEFAULT_MAX_INFLATED_BYTES, PdfLimitError, withInflateBudget } from './inflate-limit';
import { PdfError } from './pdf-error';

export const ENCRYPTED_INPUT_MESSAGE = 'input PDF is encrypted: encrypted PDFs cannot be sealed';
const ENCRYPT_KEY = /\/Encrypt(?![A-Za-z0-9])/;

export interface LoadedForUpdate {
  input: Buffer;
  doc: PDFDocument;
  /** The newest cross-reference section of the input is a stream, so the update's will be one too. */
  useObjectStreams: boolean;
  /** The catalog as loaded, to leave it out of the update when nothing changed it. */
  catalogBefore: string;
}

/** Offset of the newest cross-reference section, as the last startxref states it. */
export function startXref(input: Buffer): number {
  const at = lastIndexOfAscii(input, 'startxref');
  if (at < 0) throw new PdfError('input PDF has no startxref: not a PDF or truncated');
  const match = /startxref\s+(\d+)/.exec(input.toString('latin1', at, Math.min(input.length, at + 40)));
  if (!match?.[1]) throw new PdfError(`input PDF has an unreadable startxref at offset ${at}`);
  return Number(match[1]);
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

export function checkNotEmpty(input: Buffer): void {
  if (input.length === 0) throw new PdfError('input PDF is empty (0 bytes)');
  if (input.every((byte) => isPdfWhitespace(byte))) {
    throw new PdfError(`input PDF is empty (0 bytes besides ${input.length} bytes of whitespace)`);
  }
}

export function checkInput(input: Buffer): void {
  const head = indexOfAscii(input.subarray(0, 1024), '%PDF-');
  if (head < 0) throw new PdfError('input is not a PDF: no %PDF- header in the first 1024 bytes');
  if (lastIndexOfAscii(input.subarray(Math.max(0, input.length - 2048)), '%%EOF') < 0) {
    throw new PdfError('input PDF has no %%EOF in its last 2048 bytes: truncated?');
  }
}

/** Parses `input` so that changes to `doc` can be saved as one incremental update. */
export async function loadForUpdate(input: Buffer, maxInflatedBytes?: number): Promise<LoadedForUpdate> {
  checkNotEmpty(input);
  checkInput(input);
  const xrefAt = startXref(input);
  if (trailerNamesEncrypt(input, xrefAt)) throw new PdfError(ENCRYPTED_INPUT_MESSAGE);
  const useObjectStreams = input.toString('latin1', xrefAt, xrefAt + 4) !== 'xref';
  let doc: PDFDocument;
  try {
    doc = await withInflateBudget(maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES, () =>
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
  // load({ forIncrementalUpdate }) already took the snapshot that pdf-lib records changes against;
  // a second takeSnapshot() would start an empty one and the update would miss changed objects.
  if (!doc.context.snapshot) throw new PdfError('pdf-lib did not start an incremental update for the input');
  return { input, doc, useObjectStreams, catalogBefore: doc.catalog.toString() };
}

/**
 * The snapshot without the catalog when the update left it as it was. pdf-lib marks the catalog
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

/** The input followed by one incremental update holding every object changed or added since load. */
export async function writeUpdate(loaded: LoadedForUpdate): Promise<Buffer> {
  const { doc, input, useObjectStreams } = loaded;
  const snapshot = doc.context.snapshot!;
  const written =
    doc.catalog.toString() === loaded.catalogBefore ? unchangedCatalog(doc, snapshot) : snapshot;
  let update: Uint8Array;
  try {
    update = await doc.saveIncremental(written, { useObjectStreams, objectsPerTick: Infinity });
  } catch (cause) {
    throw new PdfError(`incremental update could not be written: ${(cause as Error).message}`, { cause });
  }
  return Buffer.concat([input, update]);
}
