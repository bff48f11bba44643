// Loading a PDF for one incremental update and writing that update: shared by every step that appends
// to a file (signature placeholder, DSS, document timestamp). The output is always the input's bytes
// followed by the update, concatenated here rather than by pdf-lib, so the input is a prefix by
// construction; the update's cross-reference section follows the input's newest one (table or stream).
import { ParseSpeeds, PDFDocument } from 'pdf-lib';
import { indexOfAscii, lastIndexOfAscii } from './bytes';
import { DEFAULT_MAX_INFLATED_BYTES, withInflateBudget } from './inflate-limit';
import { PdfError } from './pdf-error';

export interface LoadedForUpdate {
  input: Buffer;
  doc: PDFDocument;
  /** The newest cross-reference section of the input is a stream, so the update's will be one too. */
  useObjectStreams: boolean;
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

/** Parses `input` so that changes to `doc` can be saved as one incremental update. */
export async function loadForUpdate(input: Buffer, maxInflatedBytes?: number): Promise<LoadedForUpdate> {
  checkInput(input);
  const useObjectStreams = lastXrefIsStream(input);
  let doc: PDFDocument;
  try {
    doc = await withInflateBudget(maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES, () =>
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
  // load({ forIncrementalUpdate }) already took the snapshot that pdf-lib records changes against;
  // a second takeSnapshot() would start an empty one and the update would miss changed objects.
  if (!doc.context.snapshot) throw new PdfError('pdf-lib did not start an incremental update for the input');
  return { input, doc, useObjectStreams };
}

/** The input followed by one incremental update holding every object changed or added since load. */
export async function writeUpdate(loaded: LoadedForUpdate): Promise<Buffer> {
  const { doc, input, useObjectStreams } = loaded;
  let update: Uint8Array;
  try {
    update = await doc.saveIncremental(doc.context.snapshot!, { useObjectStreams, objectsPerTick: Infinity });
  } catch (cause) {
    throw new PdfError(`incremental update could not be written: ${(cause as Error).message}`, { cause });
  }
  return Buffer.concat([input, update]);
}
