// A small parser for the PDF objects the fast prepare path touches (ISO 32000-1 §7.3): dictionaries,
// arrays, names, literal and hex strings, numbers, references, booleans and null. Every dictionary
// entry and array remembers where it sits in the buffer, so an object can be rewritten by splicing
// its own bytes (everything not touched stays byte for byte what the author wrote).
import { PdfError } from './pdf-error';

/** The input's structure is broken or hostile: a reason to fall back to pdf-lib, or to refuse. */
export class PdfStructureError extends PdfError {}

export class PdfName {
  constructor(readonly name: string) {}
}

export class PdfString {
  constructor(readonly bytes: Buffer) {}

  /** As pdf-lib's decodeText: UTF-16BE with a BOM, UTF-8 with a BOM, else PDFDocEncoding (≈ Latin-1). */
  text(): string {
    const b = this.bytes;
    if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff)
      return Buffer.from(b.subarray(2)).swap16().toString('utf16le');
    if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return b.toString('utf8', 3);
    return b.toString('latin1');
  }
}

export class PdfRef {
  constructor(
    readonly num: number,
    readonly gen: number,
  ) {}

  toString(): string {
    return `${this.num} ${this.gen} R`;
  }
}

export class PdfArray {
  constructor(
    readonly items: PdfValue[],
    /** Offset of '['. */
    readonly start: number,
    /** Offset just past ']'. */
    readonly end: number,
  ) {}
}

export interface DictEntry {
  value: PdfValue;
  valueStart: number;
  valueEnd: number;
}

export class PdfDict {
  constructor(
    readonly entries: Map<string, DictEntry>,
    /** Offset of '<<'. */
    readonly start: number,
    /** Offset just past '>>'. */
    readonly end: number,
  ) {}

  get(key: string): PdfValue | undefined {
    return this.entries.get(key)?.value;
  }
}

export type PdfValue = number | boolean | null | PdfName | PdfString | PdfRef | PdfArray | PdfDict;

const MAX_DEPTH = 64; // real objects nest a few levels; deeper is an attack on the stack

const WHITESPACE = new Uint8Array(256);
for (const c of [0x00, 0x09, 0x0a, 0x0c, 0x0d, 0x20]) WHITESPACE[c] = 1;
const DELIMITER = new Uint8Array(256);
for (const c of '()<>[]{}/%') DELIMITER[c.charCodeAt(0)] = 1;

const isRegular = (c: number | undefined): boolean => c !== undefined && !WHITESPACE[c] && !DELIMITER[c];
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** A cursor over one buffer (the file, or a decoded object stream); `where` names it in errors. */
export class ObjectParser {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    private readonly where: (pos: number) => string,
  ) {}

  fail(message: string, at = this.pos): never {
    throw new PdfStructureError(`input PDF ${message} at ${this.where(at)}`);
  }

  skipWhitespace(): void {
    const { buf } = this;
    for (;;) {
      const c = buf[this.pos];
      if (c === undefined) return;
      if (WHITESPACE[c]) this.pos++;
      else if (c === 0x25) {
        while (this.pos < buf.length && buf[this.pos] !== 0x0a && buf[this.pos] !== 0x0d) this.pos++;
      } else return;
    }
  }

  /** An unsigned integer token at the cursor (after whitespace), or undefined without moving. */
  peekUint(): number | undefined {
    this.skipWhitespace();
    let p = this.pos;
    let n = 0;
    for (let c = this.buf[p]; isDigit(c); c = this.buf[++p]) n = n * 10 + c! - 0x30;
    if (p === this.pos || p - this.pos > 15 || isRegular(this.buf[p])) return undefined;
    this.pos = p;
    return n;
  }

  /** Whether `word` follows (after whitespace) as a whole token; consumes it if so. */
  keyword(word: string): boolean {
    this.skipWhitespace();
    const end = this.pos + word.length;
    for (let i = 0; i < word.length; i++) {
      if (this.buf[this.pos + i] !== word.charCodeAt(i)) return false;
    }
    if (isRegular(this.buf[end])) return false;
    this.pos = end;
    return true;
  }

  /** "num gen obj" at the cursor. */
  indirectHeader(): { num: number; gen: number } {
    const start = this.pos;
    const num = this.peekUint();
    const gen = num === undefined ? undefined : this.peekUint();
    if (num === undefined || gen === undefined || !this.keyword('obj')) {
      this.fail('has no "N G obj" object header', start);
    }
    return { num, gen };
  }

  value(depth = 0): PdfValue {
    if (depth > MAX_DEPTH) this.fail(`nests objects more than ${MAX_DEPTH} deep`);
    this.skipWhitespace();
    const { buf } = this;
    const start = this.pos;
    const c = buf[start];
    if (c === undefined) this.fail('ends inside an object');
    if (c === 0x2f) return this.name();
    if (c === 0x28) return this.literalString();
    if (c === 0x3c) return buf[start + 1] === 0x3c ? this.dict(depth) : this.hexString();
    if (c === 0x5b) {
      this.pos++;
      const items: PdfValue[] = [];
      for (;;) {
        this.skipWhitespace();
        if (buf[this.pos] === 0x5d) break;
        if (this.pos >= buf.length) this.fail('has an unterminated array', start);
        items.push(this.value(depth + 1));
      }
      this.pos++;
      return new PdfArray(items, start, this.pos);
    }
    if (isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e) return this.numberOrRef();
    let end = start;
    while (isRegular(buf[end])) end++;
    const word = buf.toString('latin1', start, end);
    this.pos = end;
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (word === 'null') return null;
    return this.fail(
      `has an unexpected token ${JSON.stringify(word.slice(0, 20) || String.fromCharCode(c))}`,
      start,
    );
  }

  private numberOrRef(): number | PdfRef {
    const { buf } = this;
    const start = this.pos;
    // Most numbers are small integers, and an integer may start a reference: read those without a string.
    const int = this.peekUint();
    if (int !== undefined) {
      const save = this.pos;
      const gen = this.peekUint();
      if (gen !== undefined && this.keyword('R')) return new PdfRef(int, gen);
      this.pos = save;
      return int;
    }
    let end = start;
    while (isRegular(buf[end])) end++;
    const text = buf.toString('latin1', start, end);
    const n = Number(text);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) || !Number.isFinite(n))
      this.fail(`has a bad number ${text.slice(0, 20)}`, start);
    this.pos = end;
    if (!/^\d+$/.test(text)) return n;
    // "num gen R": look ahead without consuming unless the whole reference is there.
    const save = this.pos;
    const gen = this.peekUint();
    if (gen !== undefined && this.keyword('R')) return new PdfRef(n, gen);
    this.pos = save;
    return n;
  }

  private name(): PdfName {
    const { buf } = this;
    let end = ++this.pos;
    while (isRegular(buf[end])) end++;
    let raw = buf.toString('latin1', this.pos, end);
    if (raw.includes('#')) {
      raw = raw.replace(/#([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
    this.pos = end;
    return new PdfName(raw);
  }

  private dict(depth: number): PdfDict {
    const { buf } = this;
    const start = this.pos;
    this.pos += 2;
    const entries = new Map<string, DictEntry>();
    for (;;) {
      this.skipWhitespace();
      if (buf[this.pos] === 0x3e && buf[this.pos + 1] === 0x3e) break;
      if (this.pos >= buf.length) this.fail('has an unterminated dictionary', start);
      if (buf[this.pos] !== 0x2f) this.fail('has a dictionary key that is not a name');
      const key = this.name().name;
      this.skipWhitespace();
      const valueStart = this.pos;
      const value = this.value(depth + 1);
      entries.set(key, { value, valueStart, valueEnd: this.pos });
    }
    this.pos += 2;
    return new PdfDict(entries, start, this.pos);
  }

  private hexString(): PdfString {
    const { buf } = this;
    const start = this.pos++;
    const end = buf.indexOf(0x3e, this.pos);
    if (end < 0) this.fail('has an unterminated hex string', start);
    const digits: number[] = [];
    for (let p = this.pos; p < end; p++) {
      const c = buf[p]!;
      if (WHITESPACE[c]) continue;
      const v = hexValue(c);
      if (v < 0) this.fail('has a bad hex string', start);
      digits.push(v);
    }
    if (digits.length % 2) digits.push(0);
    const out = Buffer.alloc(digits.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = (digits[2 * i]! << 4) | digits[2 * i + 1]!;
    this.pos = end + 1;
    return new PdfString(out);
  }

  private literalString(): PdfString {
    const { buf } = this;
    const start = this.pos++;
    const out: number[] = [];
    let nesting = 1;
    for (;;) {
      const c = buf[this.pos++];
      if (c === undefined) this.fail('has an unterminated literal string', start);
      if (c === 0x28) nesting++;
      else if (c === 0x29 && --nesting === 0) break;
      if (c === 0x0d) {
        // An unescaped EOL of any kind reads as LF (§7.3.4.2).
        if (buf[this.pos] === 0x0a) this.pos++;
        out.push(0x0a);
      } else if (c === 0x5c) {
        const e = buf[this.pos++];
        if (e === undefined) this.fail('has an unterminated literal string', start);
        const simple: Record<number, number> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x66: 0x0c };
        if (simple[e] !== undefined) out.push(simple[e]);
        else if (e >= 0x30 && e <= 0x37) {
          let v = e - 0x30;
          for (let k = 0; k < 2 && buf[this.pos]! >= 0x30 && buf[this.pos]! <= 0x37; k++)
            v = v * 8 + buf[this.pos++]! - 0x30;
          out.push(v & 0xff);
        } else if (e === 0x0d) {
          if (buf[this.pos] === 0x0a) this.pos++;
        } else if (e !== 0x0a) out.push(e);
      } else out.push(c);
    }
    return new PdfString(Buffer.from(out));
  }
}
