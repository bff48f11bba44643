// Turning an export's bytes into text for the CSV parser: choosing the encoding (BOM, UTF-8
// validity, else CP932), decoding as a stream, and normalising CRLF / CR to LF so that the parser's
// line count is exact (csv-parse counts CR and LF of a CRLF as two lines).
import fs from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import iconv from 'iconv-lite';
import { ExportError } from './export-error';
import type { ExportEncoding } from './types';

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function countLfBytes(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

/**
 * Length of the prefix of `buf` that ends on a UTF-8 character boundary, so that a character split
 * across two read chunks is validated whole. Invalid bytes are left in the prefix for isUtf8 to find.
 */
function completeUtf8Length(buf: Buffer): number {
  let i = buf.length - 1;
  while (i >= 0 && buf.length - i < 4 && (buf[i]! & 0xc0) === 0x80) i--;
  if (i < 0) return buf.length;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + need > buf.length ? i : buf.length;
}

async function startsWithUtf8Bom(file: string): Promise<boolean> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const head = Buffer.alloc(3);
    const { bytesRead } = await handle.read(head, 0, 3, 0);
    return bytesRead === 3 && head.equals(UTF8_BOM);
  } finally {
    await handle.close();
  }
}

/** Line (1-based) of the first byte that is not valid UTF-8: by LFs before it, in the lenient decode. */
function lineOfInvalidByte(linesBefore: number, body: Buffer): number {
  const lenient = body.toString('utf8');
  const bad = lenient.indexOf('\ufffd');
  return linesBefore + countNewlines(lenient.slice(0, bad === -1 ? lenient.length : bad)) + 1;
}

/**
 * Streams the whole file once, stopping at the first invalid byte; nothing is kept in memory.
 * Returns the line of the first invalid byte, or undefined if the file is valid UTF-8.
 */
async function firstInvalidUtf8Line(file: string): Promise<number | undefined> {
  let carry: Buffer = Buffer.alloc(0);
  let lines = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 })) {
    const buf: Buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    const cut = completeUtf8Length(buf);
    const body = buf.subarray(0, cut);
    if (!isUtf8(body)) return lineOfInvalidByte(lines, body);
    lines += countLfBytes(body);
    carry = Buffer.from(buf.subarray(cut));
  }
  return carry.length === 0 ? undefined : lines + 1;
}

function notUtf8(file: string, line: number, bom = false): ExportError {
  const message = bom
    ? `export ${file} starts with a UTF-8 byte order mark but is not valid UTF-8 ` +
      `(first invalid byte on line ${line}); the file looks damaged`
    : `export ${file} is not valid UTF-8 (first invalid byte on line ${line}) but the job says ` +
      `encoding 'utf8'; if it is a Shift_JIS export, configure 'cp932' (or 'auto')`;
  return new ExportError(message, { file, line });
}

/**
 * Settles the encoding before any row is read, so that a file in the wrong encoding fails before
 * the first row rather than part-way: a whole streamed pass checks UTF-8 validity unless the job
 * says cp932. Throws ExportError if the file cannot be read, is not the UTF-8 the job or its BOM
 * says, or announces UTF-8 with a BOM to a job configured for cp932.
 */
export async function resolveEncoding(file: string, configured: ExportEncoding): Promise<'utf8' | 'cp932'> {
  try {
    const bom = await startsWithUtf8Bom(file);
    if (configured === 'cp932') {
      if (bom) {
        throw new ExportError(
          `export ${file} starts with a UTF-8 byte order mark but the job says encoding 'cp932'; ` +
            `configure 'utf8' or 'auto'`,
          { file },
        );
      }
      return 'cp932';
    }
    const invalidLine = await firstInvalidUtf8Line(file);
    if (invalidLine === undefined) return 'utf8';
    if (bom) throw notUtf8(file, invalidLine, true);
    if (configured === 'utf8') throw notUtf8(file, invalidLine);
    return 'cp932';
  } catch (err) {
    if (err instanceof ExportError) throw err;
    throw unreadable(file, err);
  }
}

export function unreadable(file: string, err: unknown): ExportError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new ExportError(`cannot read export ${file}${code ? ` (${code})` : ''}`, { file, cause: err });
}

/**
 * Bytes in, text out. For utf8 every chunk is validated again (the file may have changed since
 * resolveEncoding checked it) and an invalid byte fails the stream with the same ExportError.
 */
export class ExportDecoder extends Transform {
  private readonly file: string;
  private readonly encoding: 'utf8' | 'cp932';
  private readonly cp932 = iconv.getDecoder('cp932');
  private carry: Buffer = Buffer.alloc(0);
  private pendingCr = false;
  private started = false;
  private newlines = 0;

  constructor(file: string, encoding: 'utf8' | 'cp932') {
    super();
    this.file = file;
    this.encoding = encoding;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.encoding === 'cp932') {
      this.pushText(this.cp932.write(chunk));
      callback();
      return;
    }
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const cut = completeUtf8Length(buf);
    const body = buf.subarray(0, cut);
    if (!isUtf8(body)) {
      callback(this.notUtf8(body));
      return;
    }
    this.carry = Buffer.from(buf.subarray(cut));
    this.pushText(body.toString('utf8'));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.encoding === 'cp932') {
      this.pushText(this.cp932.end() ?? '');
    } else if (this.carry.length > 0) {
      callback(this.notUtf8(this.carry));
      return;
    }
    if (this.pendingCr) this.push('\n');
    callback();
  }

  private pushText(decoded: string): void {
    let text = decoded;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr) text = '\r' + text;
    // A CR at the end of a chunk may be the first half of a CRLF: decide when the next chunk comes.
    this.pendingCr = text.endsWith('\r');
    if (this.pendingCr) text = text.slice(0, -1);
    text = text.replace(/\r\n?/g, '\n');
    if (text.length === 0) return;
    this.newlines += countNewlines(text);
    this.push(text);
  }

  /** Only reached if the file changed after resolveEncoding validated it. */
  private notUtf8(body: Buffer): ExportError {
    return notUtf8(this.file, lineOfInvalidByte(this.newlines, body));
  }
}
