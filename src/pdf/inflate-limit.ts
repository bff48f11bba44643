// A cap on the bytes pdf-lib may inflate while it loads one document, against decompression bombs.
//
// Where pdf-lib inflates: `PDFDocument.load` parses every object, and decodes exactly two kinds of
// stream on the way, object streams (/Type /ObjStm, via `PDFObjectStreamParser.forStream`) and
// cross-reference streams (/Type /XRef, via `PDFXRefStreamParser.forStream`); content, image and font
// streams stay compressed until someone asks for them, and prepare never does. Its own inflater
// (a port of pdf.js) decodes a whole Flate block per step into a doubling buffer and has no limit, so a
// 1 MB object stream could grow to 1 GiB and then be parsed object by object.
//
// Why this way: both factories are public static properties of the library, looked up at call time,
// so wrapping them sees every stream that load will decode and nothing else. The wrapper decodes the
// stream itself under the document's remaining budget, with zlib's `maxOutputLength` for Flate (native,
// stops as soon as the output would pass the cap, and faster than the JavaScript inflater), and hands
// pdf-lib the decoded bytes, so nothing is inflated twice. Every stage of a filter chain counts, as each
// stage's output is held in memory. The budget belongs to one `withInflateBudget` call through
// AsyncLocalStorage, so concurrent loads in one thread each have their own; loads outside it are
// unchanged.
//
// pdf-lib catches any error thrown while parsing an object and keeps the object as "invalid", so the
// over-budget error is also recorded in the budget and rethrown by `withInflateBudget` after the load.
import { AsyncLocalStorage } from 'node:async_hooks';
import zlib from 'node:zlib';
import {
  decodePDFRawStream,
  PDFArray,
  PDFDict,
  PDFName,
  PDFObjectStreamParser,
  PDFRawStream,
  PDFXRefStreamParser,
} from 'pdf-lib';
import { PdfError } from './pdf-error';

/** Default total of inflated bytes per document: object and xref streams of real invoices are KBs. */
export const DEFAULT_MAX_INFLATED_BYTES = 16 * 1024 * 1024;

/** A document over one of prepare's limits: it cannot be sealed as it is, whatever retries do. */
export class PdfLimitError extends PdfError {
  constructor(
    message: string,
    readonly limit: 'inflatedBytes',
    readonly maxBytes: number,
  ) {
    super(message);
  }
}

interface Budget {
  readonly maxBytes: number;
  used: number;
  exceeded?: PdfLimitError;
}

const budgets = new AsyncLocalStorage<Budget>();

const FLATE = PDFName.of('FlateDecode');
const FILTER = PDFName.of('Filter');
const DECODE_PARMS = PDFName.of('DecodeParms');
const TYPE = PDFName.of('Type');
const READ_CHUNK = 64 * 1024;

function overBudget(budget: Budget, rawStream: PDFRawStream): PdfLimitError {
  const type = rawStream.dict.lookup(TYPE);
  budget.exceeded ??= new PdfLimitError(
    `input PDF inflates to more than ${budget.maxBytes} bytes (${type instanceof PDFName ? type.asString() : 'stream'} ` +
      `of ${rawStream.contents.length} compressed bytes): a decompression bomb, or over the cap maxInflatedBytes`,
    'inflatedBytes',
    budget.maxBytes,
  );
  return budget.exceeded;
}

/** Inflates zlib data like pdf.js does (header checked, Adler-32 not, a truncated end tolerated). */
function inflate(data: Uint8Array, maxOutputLength: number): Buffer {
  const options = { maxOutputLength, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  try {
    return zlib.inflateSync(data, options);
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code !== 'Z_DATA_ERROR' ||
      !/data check/.test((err as Error).message)
    ) {
      throw err;
    }
    return zlib.inflateRawSync(data.subarray(2), options);
  }
}

/** One non-Flate stage (LZW, ASCII85, ASCIIHex, RunLength) through pdf-lib's decoder, read in chunks. */
function decodeStage(
  budget: Budget,
  rawStream: PDFRawStream,
  filter: PDFName,
  parms: unknown,
  data: Uint8Array,
): Buffer {
  const max = budget.maxBytes - budget.used;
  const dict = PDFDict.withContext(rawStream.dict.context);
  dict.set(FILTER, filter);
  if (parms instanceof PDFDict) dict.set(DECODE_PARMS, parms);
  // Unlike Flate, each readBlock of these decoders yields a bounded amount (LZW at most 512 codes of
  // up to 4 KB, the others far less), so checking between chunks overshoots the cap by at most ~2 MB.
  const stream = decodePDFRawStream(PDFRawStream.of(dict, data));
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const chunk = stream.getBytes(READ_CHUNK) as Uint8Array; // clamped only when asked for
    if (chunk.length === 0) break;
    length += chunk.length;
    if (length > max) throw overBudget(budget, rawStream);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

/** The decoded contents of a raw stream, every stage counted against the budget. */
function decodeWithin(budget: Budget, rawStream: PDFRawStream): Uint8Array {
  const filter = rawStream.dict.lookup(FILTER);
  const parms = rawStream.dict.lookup(DECODE_PARMS);
  const stages: { filter: PDFName; parms: unknown }[] = [];
  if (filter instanceof PDFName) stages.push({ filter, parms });
  else if (filter instanceof PDFArray) {
    for (let i = 0; i < filter.size(); i++) {
      stages.push({
        filter: filter.lookup(i, PDFName),
        parms: parms instanceof PDFArray ? parms.lookup(i) : undefined,
      });
    }
  } else if (filter !== undefined) {
    throw new PdfError(`stream /Filter is neither a name nor an array`);
  }
  let data: Uint8Array = rawStream.contents;
  for (const stage of stages) {
    if (stage.filter === FLATE) {
      try {
        data = inflate(data, Math.max(1, budget.maxBytes - budget.used));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
          throw overBudget(budget, rawStream);
        throw err;
      }
    } else {
      data = decodeStage(budget, rawStream, stage.filter, stage.parms, data);
    }
    budget.used += data.length;
    if (budget.used > budget.maxBytes) throw overBudget(budget, rawStream);
  }
  return data;
}

/** The same raw stream with its data already decoded, for pdf-lib to parse. */
function decodedCopy(rawStream: PDFRawStream): PDFRawStream {
  const budget = budgets.getStore();
  // Encrypted streams (a `transform`) are decoded after decryption only when a password is given,
  // which prepare never does; they and loads outside a budget go to pdf-lib unchanged.
  if (!budget || rawStream.transform) return rawStream;
  if (budget.exceeded) throw budget.exceeded;
  const decoded = decodeWithin(budget, rawStream);
  const dict = rawStream.dict.clone();
  dict.delete(FILTER);
  dict.delete(DECODE_PARMS);
  return PDFRawStream.of(dict, decoded);
}

/**
 * The decoded data of a stream read after load (e.g. a DSS entry), counted against the budget of the
 * enclosing withInflateBudget call like the streams load itself decodes.
 */
export function decodeStreamInBudget(rawStream: PDFRawStream): Uint8Array {
  const budget = budgets.getStore();
  if (!budget) throw new PdfError('decodeStreamInBudget called outside withInflateBudget');
  if (budget.exceeded) throw budget.exceeded;
  if (rawStream.transform) throw new PdfError('encrypted streams cannot be decoded here');
  return decodeWithin(budget, rawStream);
}

function install(): void {
  const objectStream = PDFObjectStreamParser.forStream;
  const xrefStream = PDFXRefStreamParser.forStream;
  if (typeof objectStream !== 'function' || typeof xrefStream !== 'function') {
    // A pdf-lib that no longer has these factories would load unbounded: refuse to run at all.
    throw new PdfError(
      'pdf-lib has no PDFObjectStreamParser/PDFXRefStreamParser.forStream: inflate cap cannot apply',
    );
  }
  PDFObjectStreamParser.forStream = (rawStream, shouldWaitForTick) =>
    objectStream(decodedCopy(rawStream), shouldWaitForTick);
  PDFXRefStreamParser.forStream = (rawStream) => xrefStream(decodedCopy(rawStream));
}

install();

/**
 * Runs `load` with at most `maxBytes` inflated in total (every object and xref stream, every filter
 * stage); throws PdfLimitError when the document needs more, even if pdf-lib swallowed it.
 */
export async function withInflateBudget<T>(maxBytes: number, load: () => Promise<T>): Promise<T> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new PdfError(`maxInflatedBytes must be a positive integer, got ${maxBytes}`);
  }
  const budget: Budget = { maxBytes, used: 0 };
  let result: T;
  try {
    result = await budgets.run(budget, load);
  } catch (err) {
    throw budget.exceeded ?? err;
  }
  if (budget.exceeded) throw budget.exceeded;
  return result;
}

/**
 * The same cap for the lazy reader of the fast prepare path (lazy-reader.ts), which inflates raw
 * Flate data itself and only for the streams it needs: the one xref or object stream that holds an
 * object it reads. Refuses with the same PdfLimitError and message as withInflateBudget.
 */
export class InflateBudget {
  private used = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new PdfError(`maxInflatedBytes must be a positive integer, got ${maxBytes}`);
    }
  }

  /** `data` inflated, counted against the cap; `type` (e.g. "/XRef") names the stream in the error. */
  inflate(data: Uint8Array, type: string): Buffer {
    const over = () =>
      new PdfLimitError(
        `input PDF inflates to more than ${this.maxBytes} bytes (${type} of ${data.length} compressed bytes): ` +
          'a decompression bomb, or over the cap maxInflatedBytes',
        'inflatedBytes',
        this.maxBytes,
      );
    let out: Buffer;
    try {
      out = inflate(data, Math.max(1, this.maxBytes - this.used));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw over();
      throw new PdfError(`input PDF has a ${type} stream that does not inflate: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.used += out.length;
    if (this.used > this.maxBytes) throw over();
    return out;
  }
}
