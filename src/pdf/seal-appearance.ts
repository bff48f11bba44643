// The visible company seal (角印) a signature widget may show: a red square stamp drawn from the
// tenant's name in vertical columns, or a PNG the tenant supplies. Builds the widget's normal
// appearance as a form XObject of new objects in the document being updated, so it lands in
// prepare's one incremental update; the page's own content is never touched. Each distinct seal is
// drawn once per process (per worker thread) and copied into every invoice that carries it.
import { createHash } from 'node:crypto';
import {
  beginText,
  concatTransformationMatrix,
  drawObject,
  endText,
  LineJoinStyle,
  PDFDocument,
  PDFFont,
  PDFImage,
  PDFName,
  PDFObjectCopier,
  PDFOperator,
  PDFRef,
  popGraphicsState,
  pushGraphicsState,
  rectangle,
  setFillingRgbColor,
  setFontAndSize,
  setLineJoin,
  setLineWidth,
  setStrokingRgbColor,
  setTextMatrix,
  showText,
  stroke,
} from 'pdf-lib';
import { codePointName, embedJapaneseFont, loadJapaneseFont, type JapaneseFont } from './japanese-font';
import { PdfError } from './pdf-error';

/** Where and what to stamp. Without one, prepare writes the invisible field it always did. */
export interface SealAppearance {
  /** 1-based page number. */
  page: number;
  /** Points from the lower-left corner of the page's CropBox (the visible page), unrotated. */
  x: number;
  y: number;
  /** Side of the square in points. */
  size: number;
  /** The seal's legend; callers pass the tenant's name. Unused when imagePng is given. */
  text?: string;
  /** The tenant's own seal image; drawn instead of the text, fitted into the square. */
  imagePng?: Uint8Array;
}

/** What the widget needs: where it sits and the appearance stream to show there. */
export interface BuiltSealAppearance {
  /** 0-based index of the page the widget belongs to. */
  pageIndex: number;
  /** The widget's /Rect in the page's user space. */
  rect: [number, number, number, number];
  /** The form XObject for /AP /N. */
  appearance: PDFRef;
}

/** Traditional vermilion of a company seal. */
export const SEAL_RED: readonly [number, number, number] = [0.8, 0.1, 0.1];
/** More characters than this make strokes too small to read in any stamp size an invoice uses. */
export const MAX_SEAL_CHARACTERS = 36;
/** A seal image is small; larger ones only cost memory (pdf-lib decodes the whole PNG). */
export const MAX_SEAL_IMAGE_PIXELS = 2048;
const MAX_SEAL_IMAGE_BYTES = 4 * 1024 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const FONT_FILE = '@expo-google-fonts/noto-serif-jp/700Bold/NotoSerifJP_700Bold.ttf';
// Noto CJK's ideographic em box runs from -0.12 em to 0.88 em around the baseline.
const EM_BOX_BOTTOM = -0.12;
// Share of a grid cell a glyph's em box fills, so neighbouring strokes do not touch.
const GLYPH_FILL = 0.96;

/** The seal font, read and parsed once per process or worker thread. */
function loadSealFont(): JapaneseFont {
  return loadJapaneseFont(FONT_FILE);
}

/**
 * The characters of the seal, in reading order: the name without whitespace, then 之印 ("seal of")
 * or 印 ("seal"), whichever leaves fewer empty cells in the grid (之印 on a tie, as most company seals
 * read). A name that already ends in 印 gets nothing appended.
 */
export function sealLegend(text: string): string[] {
  const base = [...text.replace(/\s+/gu, '')];
  if (base.length === 0) throw new PdfError('seal appearance text is empty');
  if (base[base.length - 1] === '印') return base;
  const candidates = [
    [...base, '之', '印'],
    [...base, '印'],
  ];
  const emptyCells = (n: number) => {
    const { rows, columns } = sealGrid(n);
    return rows * columns - n;
  };
  return candidates.reduce((best, c) => (emptyCells(c.length) < emptyCells(best.length) ? c : best));
}

/** The near-square grid n characters fill: columns of `rows` characters, the last one shorter. */
export function sealGrid(n: number): { rows: number; columns: number } {
  const rows = Math.ceil(Math.sqrt(n));
  return { rows, columns: Math.ceil(n / rows) };
}

/**
 * The legend split into columns, rightmost first (vertical Japanese reads top to bottom, columns
 * right to left). Only the last, leftmost, column may be shorter.
 */
export function sealColumns(legend: readonly string[]): string[][] {
  const { rows } = sealGrid(legend.length);
  const columns: string[][] = [];
  for (let i = 0; i < legend.length; i += rows) columns.push(legend.slice(i, i + rows));
  return columns;
}

function checkNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new PdfError(`seal appearance ${name} must be a finite number, got ${String(value)}`);
  }
  return value;
}

function checkPng(png: Uint8Array): void {
  const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (bytes.length < 33 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new PdfError('seal appearance imagePng is not a PNG (no PNG signature)');
  }
  if (bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new PdfError('seal appearance imagePng is not a PNG (first chunk is not IHDR)');
  }
  if (bytes.length > MAX_SEAL_IMAGE_BYTES) {
    throw new PdfError(`seal appearance imagePng is ${bytes.length} bytes; at most ${MAX_SEAL_IMAGE_BYTES}`);
  }
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (width === 0 || height === 0 || width > MAX_SEAL_IMAGE_PIXELS || height > MAX_SEAL_IMAGE_PIXELS) {
    throw new PdfError(
      `seal appearance imagePng is ${width}x${height} pixels; each side must be 1 to ${MAX_SEAL_IMAGE_PIXELS}`,
    );
  }
}

/** Thousandths of a point are finer than any device renders; more digits only bloat the stream. */
function pt(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function borderOperators(size: number): PDFOperator[] {
  const outer = size * 0.06;
  const gap = size * 0.03;
  const inner = size * 0.012;
  const innerAt = outer + gap + inner / 2;
  return [
    setStrokingRgbColor(...SEAL_RED),
    setLineJoin(LineJoinStyle.Miter),
    setLineWidth(pt(outer)),
    rectangle(pt(outer / 2), pt(outer / 2), pt(size - outer), pt(size - outer)),
    stroke(),
    setLineWidth(pt(inner)),
    rectangle(pt(innerAt), pt(innerAt), pt(size - 2 * innerAt), pt(size - 2 * innerAt)),
    stroke(),
  ];
}

/** Where the legend may go: inside the thin inner line with a little air. */
function legendBox(size: number): { at: number; side: number } {
  const at = size * (0.06 + 0.03 + 0.012 + 0.025);
  return { at, side: size - 2 * at };
}

/** The legend, checked against the limits and the font before anything is drawn or looked up. */
function checkedLegend(text: string): string[] {
  const legend = sealLegend(text);
  if (legend.length > MAX_SEAL_CHARACTERS) {
    throw new PdfError(
      `seal appearance text has ${legend.length} characters with its 印; a seal holds at most ${MAX_SEAL_CHARACTERS}`,
    );
  }
  const { face } = loadSealFont();
  const missing = legend.filter((ch) => !face.hasGlyphForCodePoint(ch.codePointAt(0)!));
  if (missing.length > 0) {
    const list = [...new Set(missing)].map((ch) => `${ch} (${codePointName(ch)})`).join(', ');
    throw new PdfError(
      `seal appearance text ${JSON.stringify(text)} has characters the seal font lacks: ${list}`,
    );
  }
  return legend;
}

async function textOperators(
  doc: PDFDocument,
  size: number,
  legend: readonly string[],
): Promise<{ operators: PDFOperator[]; font: PDFFont }> {
  const font = await embedJapaneseFont(doc, loadSealFont(), legend, {
    vert: true, // vertical forms: ー, （）, 、 turn as vertical text needs
  });

  const box = legendBox(size);
  const columns = sealColumns(legend);
  const cellWidth = box.side / columns.length;
  const operators: PDFOperator[] = [setFillingRgbColor(...SEAL_RED), beginText(), setFontAndSize('F1', 1)];
  columns.forEach((column, c) => {
    // A shorter column's characters grow taller so every column fills the square, as on real seals.
    const cellHeight = box.side / column.length;
    const left = box.at + box.side - (c + 1) * cellWidth;
    column.forEach((ch, r) => {
      const sx = cellWidth * GLYPH_FILL;
      const sy = cellHeight * GLYPH_FILL;
      const advance = font.widthOfTextAtSize(ch, 1);
      const x = left + (cellWidth - advance * sx) / 2;
      const bottom = box.at + box.side - (r + 1) * cellHeight;
      const y = bottom + (cellHeight - sy) / 2 - EM_BOX_BOTTOM * sy;
      operators.push(setTextMatrix(pt(sx), 0, 0, pt(sy), pt(x), pt(y)), showText(font.encodeText(ch)));
    });
  });
  operators.push(endText());
  return { operators, font };
}

function imageOperators(image: { width: number; height: number }, size: number): PDFOperator[] {
  // Fitted, aspect kept, centred: a seal image stretched out of shape would not look like the seal.
  const scale = Math.min(size / image.width, size / image.height);
  const w = image.width * scale;
  const h = image.height * scale;
  return [
    pushGraphicsState(),
    concatTransformationMatrix(pt(w), 0, 0, pt(h), pt((size - w) / 2), pt((size - h) / 2)),
    drawObject('Im1'),
    popGraphicsState(),
  ];
}

type SealContent = { kind: 'text'; legend: string[] } | { kind: 'image'; png: Uint8Array };

/** The seal's form XObject, drawn once into a scratch document whose objects are copied per invoice. */
interface DrawnSeal {
  scratch: PDFDocument;
  form: PDFRef;
}

// A tenant's seal is the same on every invoice of a night: drawing it again for each one (font
// subset, or PNG decoded and compressed) cost ~2 ms per invoice for a name and ~9 ms for a 256x256
// PNG. Keyed by what is drawn and the size; the least recently used is dropped.
const MAX_CACHED_SEALS = 32;
const drawnSeals = new Map<string, Promise<DrawnSeal>>();

async function drawSeal(content: SealContent, size: number): Promise<DrawnSeal> {
  const scratch = await PDFDocument.create({ updateMetadata: false });
  const operators = [pushGraphicsState()];
  const resources: Record<string, Record<string, PDFRef>> = {};
  if (content.kind === 'image') {
    let image: PDFImage;
    try {
      image = await scratch.embedPng(content.png);
    } catch (cause) {
      throw new PdfError(`seal appearance imagePng could not be decoded: ${(cause as Error).message}`, {
        cause,
      });
    }
    // A tenant's PNG is the whole seal, border included: nothing of ours is drawn around it.
    operators.push(...imageOperators(image, size));
    resources.XObject = { Im1: image.ref };
  } else {
    const text = await textOperators(scratch, size, content.legend);
    operators.push(...borderOperators(size), ...text.operators);
    resources.Font = { F1: text.font.ref };
  }
  operators.push(popGraphicsState());
  await scratch.flush(); // the font subset (every glyph now in it) and the image become objects

  const form = scratch.context.formXObject(operators, { BBox: [0, 0, size, size], Resources: resources });
  // Named so a reader of the file sees what the stream is; viewers ignore it.
  form.dict.set(PDFName.of('Name'), PDFName.of('CompanySeal'));
  return { scratch, form: scratch.context.register(form) };
}

function drawnSeal(content: SealContent, size: number): Promise<DrawnSeal> {
  const what =
    content.kind === 'text'
      ? `text:${content.legend.join('')}`
      : `png:${createHash('sha256').update(content.png).digest('hex')}`;
  const key = `${size}:${what}`;
  let drawn = drawnSeals.get(key);
  if (drawn) {
    drawnSeals.delete(key); // re-inserted below as the most recently used
  } else {
    drawn = drawSeal(content, size);
    drawn.catch(() => drawnSeals.delete(key)); // a failure is not kept
    if (drawnSeals.size >= MAX_CACHED_SEALS) drawnSeals.delete(drawnSeals.keys().next().value!);
  }
  drawnSeals.set(key, drawn);
  return drawn;
}

/**
 * Copies the drawn seal into `doc` with pdf-lib's change tracking off. While an incremental update is
 * open, pdf-lib looks every changed dictionary or array up among all indirect objects, a deep scan
 * per change (~8 ms per invoice for the font's objects). Only new objects are made here, and an update
 * writes every object numbered past the input's last one anyway, so nothing is lost by not tracking.
 */
function copyInto(doc: PDFDocument, drawn: DrawnSeal): PDFRef {
  const { snapshot } = doc.context;
  doc.context.snapshot = undefined;
  try {
    return PDFObjectCopier.for(drawn.scratch.context, doc.context).copy(drawn.form) as PDFRef;
  } finally {
    doc.context.snapshot = snapshot;
  }
}

/**
 * Validates the appearance against the document and adds its form XObject (with a subset of the
 * seal font or the PNG) to `doc`. Everything it adds is new objects, written by the next save.
 */
export async function buildSealAppearance(
  doc: PDFDocument,
  appearance: SealAppearance,
): Promise<BuiltSealAppearance> {
  const pageNumber = checkNumber('page', appearance.page);
  const pageCount = doc.getPageCount();
  if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > pageCount) {
    throw new PdfError(`seal appearance page ${pageNumber} is not a page of this ${pageCount}-page document`);
  }
  const size = checkNumber('size', appearance.size);
  if (size <= 0) throw new PdfError(`seal appearance size must be more than 0 points, got ${size}`);
  const x = checkNumber('x', appearance.x);
  const y = checkNumber('y', appearance.y);

  const page = doc.getPage(pageNumber - 1);
  const crop = page.getCropBox();
  const left = crop.x + x;
  const bottom = crop.y + y;
  const rect: [number, number, number, number] = [left, bottom, left + size, bottom + size];
  for (const [boxName, box] of [
    ['CropBox', crop],
    ['MediaBox', page.getMediaBox()],
  ] as const) {
    const inside =
      rect[0] >= box.x && rect[1] >= box.y && rect[2] <= box.x + box.width && rect[3] <= box.y + box.height;
    if (!inside) {
      throw new PdfError(
        `seal appearance square [${rect.join(' ')}] on page ${pageNumber} is not inside its ${boxName} ` +
          `[${box.x} ${box.y} ${box.x + box.width} ${box.y + box.height}]`,
      );
    }
  }

  let content: SealContent;
  if (appearance.imagePng !== undefined) {
    if (!(appearance.imagePng instanceof Uint8Array)) {
      throw new PdfError('seal appearance imagePng must be bytes (Uint8Array)');
    }
    checkPng(appearance.imagePng);
    content = { kind: 'image', png: appearance.imagePng };
  } else {
    if (typeof appearance.text !== 'string') {
      throw new PdfError('seal appearance needs text (the tenant name) or imagePng');
    }
    content = { kind: 'text', legend: checkedLegend(appearance.text) };
  }
  const form = copyInto(doc, await drawnSeal(content, size));
  return { pageIndex: pageNumber - 1, rect, appearance: form };
}
