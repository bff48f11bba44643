// The Japanese TrueType faces the pdf part draws with (the seal's Noto Serif JP, the rendered
// invoices' Noto Sans JP), read from node_modules and parsed once per process or worker thread, and
// embedded as subsets whose names carry a tag derived from their characters, so output stays
// deterministic. Holds the patch for @pdf-lib/fontkit's subset loca bug that every subset needs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fontkit from '@pdf-lib/fontkit';
import type { EmbedFontOptions, PDFDocument, PDFFont } from 'pdf-lib';
import { PdfError } from './pdf-error';

export type FontkitFont = ReturnType<typeof fontkit.create>;

/** A face read once: its file's bytes (what pdf-lib embeds from) and the parsed, patched face. */
export interface JapaneseFont {
  /** The package path it was read from, for messages. */
  file: string;
  bytes: Uint8Array;
  face: FontkitFont;
}

/** The parts of @pdf-lib/fontkit's TTFSubset (1.1.1, its last release) that the patches below touch. */
interface TtfSubsetInternals {
  glyf: Uint8Array[];
  offset: number;
  font: { getGlyph(gid: number): GlyphInternals; _variationProcessor?: unknown };
  _addGlyph(gid: number): number;
}

/** The part of a TrueType glyph that _addGlyph asks for: its outline, decoded from the glyf table. */
interface GlyphInternals {
  _decode(): unknown;
}

/** What _addGlyph reads of a decoded outline (the bounds for metrics not yet computed). */
interface OutlineHead {
  numberOfContours: number;
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
  components?: unknown[];
}

/** Outline heads by glyph, per thread: about 100 bytes each, not the outline's points. */
const outlineHeads = new WeakMap<GlyphInternals, OutlineHead | null>();

/**
 * Runs fontkit's _addGlyph with the glyph's outline head kept from the first subset that took it:
 * _addGlyph decodes the whole outline (every point) of every glyph of every subset only to learn
 * whether it is composite, and that was a quarter of a rendered invoice's CPU. The head is what a
 * decode gives on a static face; the glyph decodes normally again once the call is over.
 */
function withOutlineHead<T>(glyph: GlyphInternals, addGlyph: () => T): T {
  let head = outlineHeads.get(glyph);
  if (head === undefined) {
    const outline = glyph._decode() as OutlineHead | null;
    head = outline && {
      numberOfContours: outline.numberOfContours,
      xMin: outline.xMin,
      yMin: outline.yMin,
      xMax: outline.xMax,
      yMax: outline.yMax,
      ...(outline.components && { components: outline.components }),
    };
    outlineHeads.set(glyph, head);
  }
  const kept = head;
  Object.defineProperty(glyph, '_decode', { value: () => kept, configurable: true });
  try {
    return addGlyph();
  } finally {
    delete (glyph as Partial<GlyphInternals>)._decode;
  }
}

/**
 * @pdf-lib/fontkit writes a subset's loca in the short format, which stores offsets halved, without
 * padding the glyph records to even lengths: after the first odd-length glyph every later one is read
 * a byte off and renders blank (cantoo-scribe/pdf-lib#144, fixed upstream in fontkit 1.8 by
 * foliojs/fontkit#191). Padding each record to four bytes, as the TrueType spec recommends, keeps
 * every offset even whichever format is chosen.
 */
function padGlyphRecords(subset: fontkit.Subset): void {
  const internals = subset as unknown as Partial<TtfSubsetInternals>;
  const addGlyph = internals._addGlyph;
  if (typeof addGlyph !== 'function') {
    throw new PdfError('@pdf-lib/fontkit subset has no _addGlyph to pad glyph records: unexpected version');
  }
  internals._addGlyph = function (this: TtfSubsetInternals, gid: number): number {
    const add = () => addGlyph.call(this, gid);
    const index = this.font._variationProcessor ? add() : withOutlineHead(this.font.getGlyph(gid), add);
    const record = this.glyf[index]!;
    const padding = (4 - (record.length % 4)) % 4;
    if (padding > 0) {
      // Of the record's own class: fontkit's bundled Buffer polyfill refuses plain Uint8Arrays.
      const BufferClass = record.constructor as unknown as { alloc(size: number): Uint8Array };
      const padded = BufferClass.alloc(record.length + padding);
      padded.set(record);
      this.glyf[index] = padded;
      this.offset += padding;
    }
    return index;
  };
}

/** The part of a fontkit face that the code-point patch touches. */
interface FaceInternals {
  getGlyph(gid: number, codePoints?: number[]): { codePoints: number[] };
}

const sameCodePoints = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((c, i) => c === b[i]);

/**
 * A glyph asked for with code points carries those, not the ones the face's shared glyph object was
 * first reached by. fontkit keeps one glyph object per id with its first code points, and pdf-lib
 * writes a subset's ToUnicode map from them: an invoice drawn after another that reached a glyph
 * through another character (U+2011 or U+00AD for -, a no-break space, the radical ⼭ for 山) had
 * other bytes than drawn first, and a re-render after a crash compares those bytes. Now a layout's
 * glyphs say the characters of its own text, and the map says what the invoice's text says.
 */
function withOwnCodePoints(face: FontkitFont): void {
  const internals = face as unknown as FaceInternals;
  const getGlyph = internals.getGlyph;
  internals.getGlyph = function (this: FaceInternals, gid: number, codePoints?: number[]) {
    const glyph = getGlyph.call(this, gid, codePoints);
    if (!codePoints || codePoints.length === 0 || sameCodePoints(glyph.codePoints, codePoints)) return glyph;
    // Everything else of the glyph (metrics, outline) is the shared object's.
    return Object.create(glyph, { codePoints: { value: codePoints } }) as typeof glyph;
  };
}

/** Most texts whose glyphs a face keeps: an invoice's labels, items and names recur; numbers do not. */
const MAX_LAYOUTS = 5_000;

/**
 * The face's layout of `text`, kept as its glyphs only (pdf-lib reads nothing else of a run, nor does
 * the renderer's measuring): shaping (fontkit's GSUB/GPOS lookups) was a third of a rendered invoice's
 * CPU, and pdf-lib lays out each string again to measure it and again to draw it. fontkit hands out
 * one glyph object per id, so kept glyphs draw exactly what a fresh layout's would. About 5,000 short
 * texts: a few MB per face.
 */
function withKeptLayouts(face: FontkitFont): FontkitFont['layout'] {
  type Run = ReturnType<FontkitFont['layout']>;
  const kept = new Map<string, Run>();
  return (text, features) => {
    const key = features === undefined ? text : `${text}\u0000${JSON.stringify(features)}`;
    let run = kept.get(key);
    if (run === undefined) {
      run = { glyphs: face.layout(text, features).glyphs } as Run;
      if (kept.size >= MAX_LAYOUTS) kept.delete(kept.keys().next().value!);
      kept.set(key, run);
    }
    return run;
  };
}

/**
 * The face handed to pdf-lib makes subsets with padded glyph records (above) that offer only
 * encodeStream(): @cantoo/pdf-lib calls encode() with no arguments when a subset has one, but
 * @pdf-lib/fontkit's encode(stream) needs the stream it writes to. Its glyphs carry the code
 * points they were asked for, and its layouts are kept (above).
 */
function withSafeSubsets(face: FontkitFont): FontkitFont {
  withOwnCodePoints(face);
  return Object.create(face, {
    layout: { value: withKeptLayouts(face) },
    createSubset: {
      value: () => {
        const subset = face.createSubset();
        padGlyphRecords(subset);
        return {
          includeGlyph: (glyph: number | fontkit.Glyph) => subset.includeGlyph(glyph),
          encodeStream: () => subset.encodeStream(),
        };
      },
    },
  }) as FontkitFont;
}

// Module state is per worker thread (each thread loads its own copy of this module), so each thread
// reads and parses a face once (5 to 8 MB; parsing costs ~15 ms) and shares it between documents:
// fontkit reads a face synchronously, and each document keeps its own subset.
const loaded = new Map<string, JapaneseFont>();

/** `file` is a package path, e.g. '@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf'. */
export function loadJapaneseFont(file: string): JapaneseFont {
  let font = loaded.get(file);
  if (!font) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(require.resolve(file));
    } catch (cause) {
      throw new PdfError(`font ${file} could not be read: ${(cause as Error).message}`, { cause });
    }
    let face: FontkitFont;
    try {
      face = withSafeSubsets(fontkit.create(bytes));
    } catch (cause) {
      throw new PdfError(`font ${file} could not be parsed: ${(cause as Error).message}`, { cause });
    }
    font = { file, bytes, face };
    loaded.set(file, font);
  }
  return font;
}

/** A six-letter subset tag (ISO 32000 §9.6.4) derived from the characters, so output stays deterministic. */
export function subsetTag(characters: Iterable<string>): string {
  const digest = createHash('sha256')
    .update([...new Set(characters)].sort().join(''))
    .digest();
  return Array.from(digest.subarray(0, 6), (b) => String.fromCharCode(65 + (b % 26))).join('');
}

/** 'U+00A5'-style name of a character, for messages. */
export function codePointName(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The distinct characters of `text` the face has no glyph for (fontkit would draw glyph 0, the
 * .notdef box), in order of appearance. Control characters count as missing: they draw nothing.
 */
export function missingCharacters(face: FontkitFont, text: string): string[] {
  const missing = new Set<string>();
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const control = cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
    if (control || !face.hasGlyphForCodePoint(cp)) missing.add(ch);
  }
  return [...missing];
}

/**
 * Embeds `font` into `doc` as a subset named `<tag>+<PostScript name>`, the tag derived from the
 * characters that will be drawn with it. pdf-lib's own subset names carry a numeric suffix, not the
 * ABCDEF+ prefix that marks a subset (pdffonts reads that prefix). pdf-lib asks the registered fontkit
 * to parse the bytes for every document; it is handed the face parsed once instead.
 */
export async function embedJapaneseFont(
  doc: PDFDocument,
  font: JapaneseFont,
  characters: Iterable<string>,
  features?: EmbedFontOptions['features'],
): Promise<PDFFont> {
  doc.registerFontkit({ create: () => font.face });
  return doc.embedFont(font.bytes, {
    subset: true,
    customName: `${subsetTag(characters)}+${font.face.postscriptName ?? 'Font'}`,
    features,
  });
}
