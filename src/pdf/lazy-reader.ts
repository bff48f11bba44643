// A lazy reader of a PDF's cross-reference data (ISO 32000-1 §7.5): follows startxref and the /Prev
// chain through classic tables, xref streams and hybrid files (/XRefStm), and resolves one object by
// number on demand, from the file or from an object stream. Nothing else is parsed or inflated, so
// the cost of a lookup does not grow with the document. Linearized files and earlier incremental
// updates need nothing special: both are sections chained by /Prev.
//
// Hostile structure (a /Prev loop, offsets outside the file, counts larger than the bytes that would
// hold them, an object stream entry pointing at another object stream) is a PdfStructureError naming
// the problem and where; a decompression bomb in a stream it needs is the inflate cap's PdfLimitError.
import { InflateBudget, PdfLimitError } from './inflate-limit';
import {
  ObjectParser,
  PdfArray,
  PdfDict,
  PdfName,
  PdfRef,
  PdfStructureError,
  type PdfValue,
} from './lazy-parser';

/** Something the reader does not handle but pdf-lib does (a filter, a predictor): not an error. */
export class FastPathUnavailable extends Error {
  constructor(readonly reason: string) {
    super(`fast prepare path unavailable: ${reason}`);
    this.name = 'FastPathUnavailable';
  }
}

const MAX_SECTIONS = 1024; // one per incremental update; real files have a handful
const MAX_OBJECTS = 8_388_607; // ISO 32000-1 Annex C: the largest object number a reader need handle
const TABLE_ENTRY = 20; // §7.5.4: each entry is exactly 20 bytes, EOL included

/** Where an object's bytes are: the file, or a decoded object stream. */
export interface RawSpan {
  buf: Buffer;
  start: number;
  end: number;
}

export interface IndirectObject {
  num: number;
  gen: number;
  value: PdfValue;
  /** The value's own bytes (not the "obj"/"endobj" around it), for rewriting by splicing. */
  raw: RawSpan;
  /** Set when the object is a stream: where its (still encoded) data is in the file. */
  stream?: { dataStart: number; dataEnd: number };
}

type Entry =
  | { type: 'free' }
  | { type: 'file'; offset: number; gen: number }
  | { type: 'packed'; stream: number; index: number };

interface TableSection {
  kind: 'table';
  offset: number;
  trailer: PdfDict;
  subsections: { first: number; count: number; at: number }[];
}

interface StreamSection {
  kind: 'stream';
  offset: number;
  trailer: PdfDict;
  widths: [number, number, number];
  index: { first: number; count: number; row: number }[];
  rows: number;
  object: IndirectObject;
  /** Decoded rows, inflated on first lookup. */
  data?: Buffer;
}

export type XrefSection = TableSection | StreamSection;

interface DecodedObjectStream {
  data: Buffer;
  first: number;
  /** Pairs of (object number, offset from first), N of them. */
  table: number[];
}

const int = (v: PdfValue | undefined): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
const nameOf = (v: PdfValue | undefined): string | undefined => (v instanceof PdfName ? v.name : undefined);

export class LazyPdf {
  /** Newest first; a hybrid file's /XRefStm stream follows the table that names it. */
  readonly sections: XrefSection[] = [];
  private readonly objectStreams = new Map<number, DecodedObjectStream>();
  private readonly cache = new Map<number, IndirectObject | null>();

  constructor(
    readonly input: Buffer,
    readonly startXref: number,
    private readonly budget: InflateBudget,
    /** Called with each trailer as it is read, newest first (the encryption check). */
    onTrailer: (trailer: PdfDict) => void,
  ) {
    const seen = new Set<number>();
    let offset: number | undefined = startXref;
    while (offset !== undefined) {
      if (seen.has(offset)) this.fail(`has a loop in its /Prev chain: offset ${offset} is visited twice`);
      if (seen.size >= MAX_SECTIONS) this.fail(`has more than ${MAX_SECTIONS} cross-reference sections`);
      seen.add(offset);
      const section = this.readSection(offset, 'startxref or /Prev');
      onTrailer(section.trailer);
      this.sections.push(section);
      if (section.kind === 'table') {
        const stmAt = int(section.trailer.get('XRefStm'));
        if (stmAt !== undefined) {
          const stm = this.readSection(stmAt, '/XRefStm');
          if (stm.kind !== 'stream') this.fail(`has a /XRefStm ${stmAt} that is not an xref stream`);
          this.sections.push(stm);
        }
      }
      const prev = section.trailer.get('Prev');
      if (prev !== undefined && int(prev) === undefined) this.fail(`has a /Prev that is not an offset`);
      offset = int(prev);
    }
  }

  get newest(): XrefSection {
    return this.sections[0]!;
  }

  get trailer(): PdfDict {
    return this.newest.trailer;
  }

  private fail(message: string): never {
    throw new PdfStructureError(`input PDF ${message}`);
  }

  private where = (pos: number) => `offset ${pos}`;

  /** `what` reads after "has": "a startxref or /Prev offset", "an offset for object 7". */
  private checkOffset(offset: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.input.length) {
      this.fail(`has ${what} (${offset}) outside the file (${this.input.length} bytes)`);
    }
  }

  private readSection(offset: number, what: string): XrefSection {
    this.checkOffset(offset, `a ${what} offset`);
    const p = new ObjectParser(this.input, offset, this.where);
    // Some writers point a few bytes early (before an EOL); whitespace is skipped, nothing else.
    if (p.keyword('xref')) return this.readTable(offset, p);
    p.pos = offset;
    p.skipWhitespace();
    if (!isDigitAt(this.input, p.pos)) this.fail(`has no xref section at its ${what} offset ${offset}`);
    const object = this.readObjectAt(p.pos, undefined);
    const dict = object.value;
    if (!(dict instanceof PdfDict) || nameOf(dict.get('Type')) !== 'XRef' || !object.stream) {
      this.fail(`has no xref table or xref stream at its ${what} offset ${offset}`);
    }
    const w = dict.get('W');
    const widths = w instanceof PdfArray ? w.items.map(int) : [];
    if (widths.length !== 3 || widths.some((x) => x === undefined || x < 0 || x > 8) || widths[1] === 0) {
      this.fail(`has an xref stream at offset ${offset} with an unreadable /W`);
    }
    const size = int(dict.get('Size'));
    if (size === undefined || size < 0 || size > MAX_OBJECTS) {
      this.fail(`has an xref stream at offset ${offset} with an unreadable /Size`);
    }
    const indexValue = dict.get('Index');
    const flat =
      indexValue === undefined
        ? [0, size]
        : indexValue instanceof PdfArray
          ? indexValue.items.map(int)
          : [undefined];
    if (flat.length % 2 || flat.some((x) => x === undefined || x < 0 || x > MAX_OBJECTS)) {
      this.fail(`has an xref stream at offset ${offset} with an unreadable /Index`);
    }
    const index: StreamSection['index'] = [];
    let rows = 0;
    for (let i = 0; i < flat.length; i += 2) {
      index.push({ first: flat[i]!, count: flat[i + 1]!, row: rows });
      rows += flat[i + 1]!;
      if (rows > MAX_OBJECTS)
        this.fail(`has an xref stream at offset ${offset} with more than ${MAX_OBJECTS} entries`);
    }
    return {
      kind: 'stream',
      offset,
      trailer: dict,
      widths: widths as [number, number, number],
      index,
      rows,
      object,
    };
  }

  private readTable(offset: number, p: ObjectParser): TableSection {
    const { input } = this;
    const subsections: TableSection['subsections'] = [];
    for (;;) {
      if (p.keyword('trailer')) break;
      const headerAt = p.pos;
      const first = p.peekUint();
      const count = first === undefined ? undefined : p.peekUint();
      if (first === undefined || count === undefined) {
        this.fail(`has an unreadable xref table at offset ${offset} (subsection header at ${headerAt})`);
      }
      // The entries start after the header line's EOL.
      while (input[p.pos] === 0x20 || input[p.pos] === 0x09) p.pos++;
      if (input[p.pos] === 0x0d) p.pos++;
      if (input[p.pos] === 0x0a) p.pos++;
      const at = p.pos;
      if (first + count > MAX_OBJECTS || at + count * TABLE_ENTRY > input.length) {
        this.fail(
          `has an xref subsection "${first} ${count}" at offset ${headerAt} that runs past the end of the file`,
        );
      }
      for (const i of count > 0 ? [0, count - 1] : []) {
        if (
          !/^\d{10} \d{5} [fn][\r\n ]{2}$/.test(
            input.toString('latin1', at + i * TABLE_ENTRY, at + (i + 1) * TABLE_ENTRY),
          )
        ) {
          this.fail(`has an xref entry that is not 20 bytes long in the subsection at offset ${headerAt}`);
        }
      }
      subsections.push({ first, count, at });
      p.pos = at + count * TABLE_ENTRY;
    }
    p.skipWhitespace();
    const trailer = p.value();
    if (!(trailer instanceof PdfDict))
      this.fail(`has a trailer at offset ${offset} that is not a dictionary`);
    return { kind: 'table', offset, trailer, subsections };
  }

  /** The entry for object `num`, from the newest section that has one. */
  private entry(num: number): Entry | undefined {
    for (const section of this.sections) {
      const found = section.kind === 'table' ? this.tableEntry(section, num) : this.streamEntry(section, num);
      if (found) return found;
    }
    return undefined;
  }

  private tableEntry(section: TableSection, num: number): Entry | undefined {
    // The newest subsection wins inside a section too (a writer may repeat an object).
    for (let s = section.subsections.length - 1; s >= 0; s--) {
      const sub = section.subsections[s]!;
      if (num < sub.first || num >= sub.first + sub.count) continue;
      const at = sub.at + (num - sub.first) * TABLE_ENTRY;
      const text = this.input.toString('latin1', at, at + 18);
      const m = /^(\d{10}) (\d{5}) ([fn])$/.exec(text);
      if (!m) this.fail(`has an unreadable xref entry for object ${num} at offset ${at}`);
      if (m[3] === 'f') return { type: 'free' };
      return { type: 'file', offset: Number(m[1]), gen: Number(m[2]) };
    }
    return undefined;
  }

  private streamEntry(section: StreamSection, num: number): Entry | undefined {
    const sub = section.index.find((s) => num >= s.first && num < s.first + s.count);
    if (!sub) return undefined;
    const [w0, w1, w2] = section.widths;
    const rowLength = w0 + w1 + w2;
    section.data ??= this.streamData(section.object, '/XRef', section.rows * rowLength);
    const data = section.data;
    const at = (sub.row + num - sub.first) * rowLength;
    if (at + rowLength > data.length) {
      this.fail(`has an xref stream at offset ${section.offset} shorter than its /Index says`);
    }
    const field = (from: number, width: number): number => {
      let v = 0;
      for (let i = 0; i < width; i++) v = v * 256 + data[from + i]!;
      return v;
    };
    const type = w0 === 0 ? 1 : field(at, w0);
    const f2 = field(at + w0, w1);
    const f3 = field(at + w0 + w1, w2);
    if (type === 0) return { type: 'free' };
    if (type === 1) return { type: 'file', offset: f2, gen: f3 };
    if (type === 2) return { type: 'packed', stream: f2, index: f3 };
    return undefined; // §7.5.8.3: other types are to be treated as a null reference
  }

  /** Whether some section lists object `num` as in use (a number a new object must not take). */
  inUse(num: number): boolean {
    const found = this.entry(num);
    return found !== undefined && found.type !== 'free';
  }

  /** Object `ref` (its value, bytes and number); null for a free or missing object (§7.3.10). */
  resolve(ref: PdfRef): IndirectObject | null {
    const cached = this.cache.get(ref.num);
    if (cached !== undefined) return cached;
    this.cache.set(ref.num, null); // a reference cycle through /Length reads as missing
    const entry = this.entry(ref.num);
    let found: IndirectObject | null = null;
    if (entry?.type === 'file') {
      this.checkOffset(entry.offset, `an offset for object ${ref.num}`);
      found = this.readObjectAt(entry.offset, ref.num);
      if (found.gen !== entry.gen)
        this.fail(`has object ${ref.num} with generation ${found.gen}, its xref entry says ${entry.gen}`);
    } else if (entry?.type === 'packed') {
      found = this.readPacked(ref.num, entry.stream, entry.index);
    }
    this.cache.set(ref.num, found);
    return found;
  }

  /** A value, with one level of reference followed. */
  lookup(value: PdfValue | undefined): PdfValue | undefined {
    if (!(value instanceof PdfRef)) return value;
    const object = this.resolve(value);
    return object ? object.value : null;
  }

  private readObjectAt(offset: number, expected: number | undefined): IndirectObject {
    const p = new ObjectParser(this.input, offset, this.where);
    const { num, gen } = p.indirectHeader();
    if (expected !== undefined && num !== expected) {
      this.fail(`has object ${num} at offset ${offset} where its xref says object ${expected} is`);
    }
    p.skipWhitespace();
    const start = p.pos;
    const value = p.value();
    const raw = { buf: this.input, start, end: p.pos };
    if (!p.keyword('stream')) return { num, gen, value, raw };
    if (!(value instanceof PdfDict)) this.fail(`has a stream object ${num} without a dictionary`);
    // §7.3.8.1: the keyword is followed by CRLF or LF (a lone CR tolerated, as readers do).
    if (this.input[p.pos] === 0x0d) p.pos++;
    if (this.input[p.pos] === 0x0a) p.pos++;
    const dataStart = p.pos;
    const lengthValue = value.get('Length');
    const length = int(lengthValue instanceof PdfRef ? (this.lookup(lengthValue) ?? undefined) : lengthValue);
    if (length === undefined || length < 0 || dataStart + length > this.input.length) {
      this.fail(`has stream object ${num} at offset ${offset} with a /Length outside the file`);
    }
    const after = new ObjectParser(this.input, dataStart + length, this.where);
    if (!after.keyword('endstream'))
      this.fail(`has stream object ${num} at offset ${offset} whose /Length is wrong`);
    return { num, gen, value, raw, stream: { dataStart, dataEnd: dataStart + length } };
  }

  /** A stream's data decoded (Flate with or without a PNG predictor, or no filter). */
  streamData(object: IndirectObject, type: string, expectedLength?: number): Buffer {
    const dict = object.value as PdfDict;
    const { dataStart, dataEnd } = object.stream!;
    const raw = this.input.subarray(dataStart, dataEnd);
    let filter = this.lookup(dict.get('Filter'));
    let parms = this.lookup(dict.get('DecodeParms'));
    if (filter instanceof PdfArray && filter.items.length <= 1) {
      filter = filter.items[0];
      parms = parms instanceof PdfArray ? this.lookup(parms.items[0]) : parms;
    }
    if (filter === undefined || filter === null) return raw;
    if (nameOf(filter) !== 'FlateDecode') {
      throw new FastPathUnavailable(`a ${type} stream with a filter other than /FlateDecode`);
    }
    let data: Buffer;
    try {
      data = this.budget.inflate(raw, type);
    } catch (err) {
      if (err instanceof PdfLimitError) throw err;
      throw new PdfStructureError(
        `input PDF has a ${type} stream (object ${object.num}) that does not inflate`,
        { cause: err },
      );
    }
    if (parms instanceof PdfDict) data = this.unpredict(data, parms, type);
    if (expectedLength !== undefined && data.length < expectedLength) {
      this.fail(`has a ${type} stream (object ${object.num}) shorter than its dictionary says`);
    }
    return data;
  }

  /** Undoes a PNG predictor (§7.4.4.4, Table 8: /Predictor 10-15), the one xref streams use. */
  private unpredict(data: Buffer, parms: PdfDict, type: string): Buffer {
    const predictor = int(this.lookup(parms.get('Predictor'))) ?? 1;
    if (predictor === 1) return data;
    if (predictor < 10) throw new FastPathUnavailable(`a ${type} stream with TIFF predictor ${predictor}`);
    const colors = int(this.lookup(parms.get('Colors'))) ?? 1;
    const bits = int(this.lookup(parms.get('BitsPerComponent'))) ?? 8;
    const columns = int(this.lookup(parms.get('Columns'))) ?? 1;
    if (colors < 1 || colors > 32 || ![1, 2, 4, 8, 16].includes(bits) || columns < 1 || columns > 1 << 20) {
      this.fail(`has a ${type} stream with unreadable /DecodeParms`);
    }
    const bpp = Math.max(1, Math.ceil((colors * bits) / 8));
    const rowLength = Math.ceil((columns * colors * bits) / 8);
    const rows = Math.floor(data.length / (rowLength + 1));
    const out = Buffer.alloc(rows * rowLength);
    for (let r = 0; r < rows; r++) {
      const tag = data[r * (rowLength + 1)]!;
      const src = r * (rowLength + 1) + 1;
      const dst = r * rowLength;
      for (let i = 0; i < rowLength; i++) {
        const x = data[src + i]!;
        const left = i >= bpp ? out[dst + i - bpp]! : 0;
        const up = r > 0 ? out[dst - rowLength + i]! : 0;
        const upLeft = r > 0 && i >= bpp ? out[dst - rowLength + i - bpp]! : 0;
        let v: number;
        if (tag === 0) v = x;
        else if (tag === 1) v = x + left;
        else if (tag === 2) v = x + up;
        else if (tag === 3) v = x + ((left + up) >> 1);
        else if (tag === 4) {
          const p = left + up - upLeft;
          const pa = Math.abs(p - left);
          const pb = Math.abs(p - up);
          const pc = Math.abs(p - upLeft);
          v = x + (pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft);
        } else this.fail(`has a ${type} stream with an unknown PNG predictor tag ${tag}`);
        out[dst + i] = v & 0xff;
      }
    }
    return out;
  }

  private readPacked(num: number, streamNum: number, index: number): IndirectObject {
    let decoded = this.objectStreams.get(streamNum);
    if (!decoded) {
      const entry = this.entry(streamNum);
      if (entry?.type !== 'file') {
        this.fail(`has object ${num} in object stream ${streamNum}, which is not an object in the file`);
      }
      const holder = this.resolve(new PdfRef(streamNum, entry.gen));
      const dict = holder?.value;
      if (!holder?.stream || !(dict instanceof PdfDict) || nameOf(dict.get('Type')) !== 'ObjStm') {
        this.fail(`has object ${num} in object ${streamNum}, which is not an object stream`);
      }
      const n = int(dict.get('N'));
      const first = int(dict.get('First'));
      const data = this.streamData(holder, '/ObjStm');
      // Each of the N pairs takes at least 4 bytes ("1 0 "), all before /First.
      if (
        n === undefined ||
        first === undefined ||
        n < 0 ||
        first < 0 ||
        first > data.length ||
        n * 4 > first + 1
      ) {
        this.fail(`has object stream ${streamNum} with an unreadable /N or /First`);
      }
      const p = new ObjectParser(data, 0, (pos) => `offset ${pos} of object stream ${streamNum}`);
      const table: number[] = [];
      for (let i = 0; i < 2 * n; i++) {
        const v = p.peekUint();
        if (v === undefined || p.pos > first)
          this.fail(`has object stream ${streamNum} with an unreadable offset table`);
        table.push(v);
      }
      decoded = { data, first, table };
      this.objectStreams.set(streamNum, decoded);
    }
    const { data, first, table } = decoded;
    if (index < 0 || 2 * index >= table.length || table[2 * index] !== num) {
      this.fail(
        `has object ${num} at index ${index} of object stream ${streamNum}, which holds another object there`,
      );
    }
    const start = first + table[2 * index + 1]!;
    if (start >= data.length) this.fail(`has object ${num} outside its object stream ${streamNum}`);
    const p = new ObjectParser(data, start, (pos) => `offset ${pos} of object stream ${streamNum}`);
    p.skipWhitespace();
    const valueStart = p.pos;
    const value = p.value();
    return { num, gen: 0, value, raw: { buf: data, start: valueStart, end: p.pos } };
  }
}

function isDigitAt(buf: Buffer, pos: number): boolean {
  const c = buf[pos];
  return c !== undefined && c >= 0x30 && c <= 0x39;
}
