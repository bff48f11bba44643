// Hand-built one-page PDFs with one extra stream, for prepare's limits: a decompression bomb (an object
// or xref stream whose Flate data inflates to hundreds of MB from a few hundred KB) and a large but
// legitimate object stream. The bomb is assembled from one deflated block repeated, so building it
// never holds the inflated bytes.
import zlib from 'node:zlib';

const ADLER_MOD = 65521;
const MiB = 1024 * 1024;

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + (bytes[i] ?? 0)) % ADLER_MOD;
    b = (b + a) % ADLER_MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib's adler32_combine: the Adler-32 of A || B from those of A and B and B's length. */
function adler32Combine(adlerA: number, adlerB: number, lengthB: number): number {
  const rem = lengthB % ADLER_MOD;
  let sum1 = adlerA & 0xffff;
  let sum2 = (rem * sum1) % ADLER_MOD;
  sum1 += (adlerB & 0xffff) + ADLER_MOD - 1;
  sum2 += (adlerA >>> 16) + (adlerB >>> 16) + ADLER_MOD - rem;
  if (sum1 >= ADLER_MOD) sum1 -= ADLER_MOD;
  if (sum1 >= ADLER_MOD) sum1 -= ADLER_MOD;
  if (sum2 >= ADLER_MOD * 2) sum2 -= ADLER_MOD * 2;
  if (sum2 >= ADLER_MOD) sum2 -= ADLER_MOD;
  return ((sum2 << 16) | sum1) >>> 0;
}

/** A zlib stream of `piece` repeated `times` times then `tail`, built from one deflated copy. */
function repeatedZlib(piece: Buffer, times: number, tail: Buffer): Buffer {
  // A full flush ends each copy on a byte boundary with no reference to what came before, so the same
  // compressed bytes can follow each other; a final empty fixed-Huffman block (03 00) closes the data.
  const flush = { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH };
  const body = zlib.deflateRawSync(piece, flush);
  const tailBody = zlib.deflateRawSync(tail, flush);
  const adlerPiece = adler32(piece);
  let adler = 1;
  for (let i = 0; i < times; i++) adler = adler32Combine(adler, adlerPiece, piece.length);
  adler = adler32Combine(adler, adler32(tail), tail.length);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adler);
  return Buffer.concat([
    Buffer.from([0x78, 0xda]),
    ...Array<Buffer>(times).fill(body),
    tailBody,
    Buffer.from([0x03, 0x00]),
    trailer,
  ]);
}

/** An object of `buildPdf`: a dictionary or other direct object, or a stream. */
export type PdfObject = string | { dict: string; data: Buffer };

/**
 * A PDF with objects 1..n as given (classic xref, /Root `root` 0 R). A stream's dictionary gets its
 * /Length; other entries, /Filter included, are the caller's.
 */
export function buildPdf(objects: PdfObject[], root = 1): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  const offsets: number[] = [];
  let length = parts[0]!.length;
  const add = (bytes: Buffer): void => {
    parts.push(bytes);
    length += bytes.length;
  };
  objects.forEach((object, i) => {
    offsets.push(length);
    if (typeof object === 'string') {
      add(Buffer.from(`${i + 1} 0 obj\n${object}\nendobj\n`, 'latin1'));
    } else {
      add(
        Buffer.from(`${i + 1} 0 obj\n<< ${object.dict} /Length ${object.data.length} >>\nstream\n`, 'latin1'),
      );
      add(object.data);
      add(Buffer.from('\nendstream\nendobj\n', 'latin1'));
    }
  });
  const xrefAt = length;
  const rows = offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  const size = objects.length + 1;
  add(
    Buffer.from(
      `xref\n0 ${size}\n0000000000 65535 f \n${rows}trailer\n<< /Size ${size} /Root ${root} 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`,
      'latin1',
    ),
  );
  return Buffer.concat(parts);
}

/** The catalog, page tree and one page as objects 1-3, direct in the file. */
export const ONE_PAGE: readonly string[] = [
  '<< /Type /Catalog /Pages 2 0 R >>',
  '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
  '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>',
];

/** A one-page PDF whose object 4 is a Flate stream with the given dictionary entries. */
export function pdfWithStream(streamEntries: string, compressed: Buffer): Buffer {
  return buildPdf([...ONE_PAGE, { dict: `${streamEntries} /Filter /FlateDecode`, data: compressed }]);
}

/** The contents of an object stream holding `objects` as objects `first`, `first + 1`, ... */
export function objectStreamContents(first: number, objects: string[]): { data: Buffer; entries: string } {
  const table: string[] = [];
  let offset = 0;
  for (const [i, body] of objects.entries()) {
    table.push(`${first + i} ${offset}`);
    offset += body.length + 1;
  }
  const head = `${table.join(' ')} `;
  return {
    data: Buffer.from(head + objects.map((o) => `${o} `).join(''), 'latin1'),
    entries: `/Type /ObjStm /N ${objects.length} /First ${head.length}`,
  };
}

/**
 * A decompression bomb: an object stream whose offsets table ("6 0 " again and again) inflates to
 * `inflatedMiB` MiB, about 1 KB per MiB in the file. Past an inflate cap it is refused; without one,
 * parsing its table fills the heap with millions of entries.
 */
export function objectStreamBomb(inflatedMiB: number): Buffer {
  const table = Buffer.from('6 0 '.repeat(MiB / 4), 'latin1');
  const object = Buffer.from('<< /Bomb true >>', 'latin1');
  const compressed = repeatedZlib(table, inflatedMiB, object);
  return pdfWithStream(`/Type /ObjStm /N ${(inflatedMiB * MiB) / 4} /First ${inflatedMiB * MiB}`, compressed);
}

/** The same bomb as a cross-reference stream (the other kind pdf-lib inflates while loading). */
export function xrefStreamBomb(inflatedMiB: number): Buffer {
  const rows = Buffer.alloc(MiB); // rows of /W [1 2 1] zeros: free entries
  const compressed = repeatedZlib(rows, inflatedMiB, Buffer.alloc(0));
  return pdfWithStream(`/Type /XRef /W [1 2 1] /Size ${(inflatedMiB * MiB) / 4}`, compressed);
}

/**
 * A legitimate but slow input: an object stream of `count` small dictionaries (pdf-lib parses each),
 * about 20 bytes each inflated.
 */
export function manyObjectsPdf(count: number): Buffer {
  const objects = Array.from({ length: count }, (_, i) => `<< /K ${i} >>`);
  const { data, entries } = objectStreamContents(10, objects);
  return pdfWithStream(entries, zlib.deflateSync(data));
}

/**
 * The xref-stream bomb made the file's newest cross-reference section (startxref points at it, and it
 * names the catalog): every prepare reads it, the fast path included.
 */
export function newestXrefStreamBomb(inflatedMiB: number): Buffer {
  const bomb = xrefStreamBomb(inflatedMiB)
    .toString('latin1')
    .replace('/Type /XRef', '/Root 1 0 R /Type /XRef');
  const at = bomb.indexOf('4 0 obj');
  return Buffer.from(bomb.replace(/startxref\n\d+/, `startxref\n${at}`), 'latin1');
}
