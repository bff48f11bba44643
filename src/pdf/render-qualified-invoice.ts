// Renders a qualified invoice (適格請求書) from figures already computed by the export part: every
// item the invoice system requires, on as many A4 pages as the lines need, in Noto Sans JP embedded
// as subsets. The output is a pure function of the input (dates from the issue date, fixed producer,
// trailer /ID and subset tags from the content), so a re-run renders the same bytes.
//
// Text that does not fit its place: free text (names, descriptions, address, payee, footer) wraps
// within its column, by character for Japanese and at spaces for Latin words, with the usual line-start
// rules for closing punctuation; figures and short cells (dates, quantities, prices, amounts, rates,
// the invoice number) never wrap but shrink to fit, down to MIN_FONT_SIZE, below which it is an error.
// Nothing is drawn across a column's edge.
import { createHash } from 'node:crypto';
import { PDFDocument, PDFFont, PDFHexString, PDFImage, PDFPage, rgb } from 'pdf-lib';
import type {
  InvoiceDocument,
  InvoiceDocumentLine,
  InvoiceDocumentRate,
  InvoiceTemplate,
} from './invoice-document';
import {
  codePointName,
  embedJapaneseFont,
  loadJapaneseFont,
  missingCharacters,
  type JapaneseFont,
} from './japanese-font';
import { PdfError } from './pdf-error';
// Before any document is written, in every thread that renders: the same deflate for every render.
import './native-deflate';

const REGULAR_FILE = '@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf';
const BOLD_FILE = '@expo-google-fonts/noto-sans-jp/700Bold/NotoSansJP_700Bold.ttf';
const PRODUCER = 'nightly-eseal-worker';

const MM = 72 / 25.4;
const PAGE_WIDTH = 595.28;
const PAGE_HEIGHT = 841.89;
const MARGIN = 15 * MM;
const CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN;
const RIGHT = PAGE_WIDTH - MARGIN;
const LOGO_WIDTH = 40 * MM;
const LOGO_HEIGHT = 15 * MM;
/** Shrinking a figure further would make it unreadable: an error instead. */
export const MIN_FONT_SIZE = 5;
const MAX_LOGO_BYTES = 4 * 1024 * 1024;
/** Noto CJK's ideographic em box runs from -0.12 em to 0.88 em around the baseline. */
const ASCENT = 0.88;
const LINE_SPACING = 1.4;
const CELL_PADDING = 3;

const DEFAULT_ACCENT = '#1f3a5f';
const DEFAULT_TEXT = '#000000';
const DEFAULT_TITLE = '請求書';
const WHITE: Rgb = [1, 1, 1];
const RULE_GREY: Rgb = [0.75, 0.75, 0.75];

type Rgb = [number, number, number];
type Weight = 'regular' | 'bold';

/** What a page shows, laid out before anything is embedded (so the subsets' tags can name their characters). */
type Op =
  | { kind: 'text'; text: string; x: number; baseline: number; size: number; weight: Weight; colour: Rgb }
  | { kind: 'rect'; x: number; top: number; width: number; height: number; fill?: Rgb; stroke?: Rgb }
  | { kind: 'line'; x1: number; x2: number; y: number; thickness: number; colour: Rgb }
  | { kind: 'logo'; x: number; top: number; width: number; height: number };

interface Fonts {
  regular: JapaneseFont;
  bold: JapaneseFont;
}

/** Measures with the faces themselves, as pdf-lib will (fontkit layout, advance widths). */
class Typesetter {
  private readonly widths = new Map<string, number>();
  private readonly charWidths = new Map<string, number>();
  constructor(private readonly fonts: Fonts) {}

  width(text: string, size: number, weight: Weight): number {
    const key = `${weight}:${text}`;
    let units = this.widths.get(key);
    if (units === undefined) {
      const { face } = this.fonts[weight];
      units = face.layout(text).glyphs.reduce((sum, g) => sum + g.advanceWidth, 0) / face.unitsPerEm;
      this.widths.set(key, units);
    }
    return units * size;
  }

  private charWidth(ch: string, size: number, weight: Weight): number {
    const key = `${weight}:${ch}`;
    let units = this.charWidths.get(key);
    if (units === undefined) {
      const { face } = this.fonts[weight];
      units = face.glyphForCodePoint(ch.codePointAt(0)!).advanceWidth / face.unitsPerEm;
      this.charWidths.set(key, units);
    }
    return units * size;
  }

  /** Lines of at most `width` points; see the module comment for where lines break. */
  wrap(text: string, width: number, size: number, weight: Weight): string[] {
    const chars = [...text];
    const lines: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = start;
      let used = 0;
      let lastBreak = -1;
      while (end < chars.length) {
        const w = this.charWidth(chars[end]!, size, weight);
        if (used + w > width && end > start) break;
        used += w;
        end++;
        if (end < chars.length && canBreakBetween(chars[end - 1]!, chars[end]!)) lastBreak = end;
      }
      if (end < chars.length) {
        if (lastBreak > start) end = lastBreak;
        // A closing mark or small kana never starts a line: take the character before it along.
        for (let i = 0; i < 2 && end - 1 > start && NO_LINE_START.has(chars[end]!); i++) end--;
      }
      const line = chars.slice(start, end).join('').trimEnd();
      if (line.length > 0) lines.push(line);
      start = end;
      while (chars[start] === ' ') start++;
    }
    return lines.length > 0 ? lines : [''];
  }

  /** The largest size up to `size` at which `text` fits `width`, or an error naming the field. */
  fit(field: string, text: string, width: number, size: number, weight: Weight): number {
    const natural = this.width(text, size, weight);
    if (natural <= width) return size;
    const fitted = Math.floor(((size * width) / natural) * 100) / 100;
    if (fitted < MIN_FONT_SIZE) {
      throw new PdfError(
        `${field} ${JSON.stringify(text)} does not fit its ${width.toFixed(0)} pt column even at ${MIN_FONT_SIZE} pt`,
      );
    }
    return fitted;
  }
}

const NO_LINE_START = new Set([
  ...'、。，．,.)]）」』】〕〉》・：；:;？！?!ーぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々%％',
]);

function isWide(ch: string): boolean {
  return ch.codePointAt(0)! >= 0x2e80;
}

function canBreakBetween(before: string, after: string): boolean {
  return before === ' ' || after === ' ' || isWide(before) || isWide(after);
}

// ---------------------------------------------------------------------------------------------
// Checking and formatting the input

function fail(doc: InvoiceDocument, message: string): never {
  throw new PdfError(`invoice ${String(doc.invoiceNumber)}: ${message}`);
}

function parseColour(field: string, value: string | undefined, fallback: string): Rgb {
  const colour = value ?? fallback;
  if (typeof colour !== 'string' || !/^#[0-9a-fA-F]{6}$/.test(colour)) {
    throw new PdfError(`template ${field} ${JSON.stringify(colour)} is not a colour written '#RRGGBB'`);
  }
  const n = Number.parseInt(colour.slice(1), 16);
  return [((n >> 16) & 0xff) / 255, ((n >> 8) & 0xff) / 255, (n & 0xff) / 255];
}

function checkDate(doc: InvoiceDocument, field: string, value: string): string {
  const m = typeof value === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
  const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !date || date.getUTCDate() !== Number(m[3]) || date.getUTCMonth() !== Number(m[2]) - 1) {
    fail(doc, `${field} ${JSON.stringify(value)} is not a date written YYYY-MM-DD`);
  }
  return value;
}

/** 2025-04-30 → 2025年4月30日 */
function japaneseDate(iso: string): string {
  const [y, m, d] = iso.split('-');
  return `${y}年${Number(m)}月${Number(d)}日`;
}

/** 2025-04-30 → 2025/04/30, for the table's narrow date column. */
function slashDate(iso: string): string {
  return iso.replaceAll('-', '/');
}

function checkYen(doc: InvoiceDocument, field: string, value: number): number {
  if (!Number.isSafeInteger(value)) fail(doc, `${field} ${String(value)} is not a whole number of yen`);
  return value;
}

/** Digits grouped by three with commas, whatever the machine's locale (no Intl, no ICU data). */
function groupDigits(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** ¥1,234 and -¥1,234 */
export function formatYen(n: number): string {
  const grouped = groupDigits(String(Math.abs(n)));
  return n < 0 ? `-¥${grouped}` : `¥${grouped}`;
}

const DECIMAL = /^(-?)(\d+)(\.\d+)?$/;

/** An exported decimal ("1200", "-12.5") with its whole part grouped: "1,200", "-12.5". */
function formatDecimal(doc: InvoiceDocument, field: string, value: string): { sign: string; text: string } {
  const m = typeof value === 'string' ? DECIMAL.exec(value.trim()) : null;
  if (!m) fail(doc, `${field} ${JSON.stringify(value)} is not a decimal number`);
  return { sign: m[1]!, text: `${groupDigits(m[2]!)}${m[3] ?? ''}` };
}

function unitPriceText(doc: InvoiceDocument, field: string, value: string): string {
  const { sign, text } = formatDecimal(doc, field, value);
  return `${sign}¥${text}`;
}

function quantityText(doc: InvoiceDocument, field: string, line: InvoiceDocumentLine): string {
  const { sign, text } = formatDecimal(doc, field, line.quantity);
  return line.unit ? `${sign}${text} ${line.unit}` : `${sign}${text}`;
}

const CATEGORY_ORDER = { standard: 0, reduced: 1, exempt: 2 } as const;

/** Text fields, each checked against both faces so that no character is drawn as a .notdef box. */
function checkDrawable(doc: InvoiceDocument, template: InvoiceTemplate, fonts: Fonts): void {
  const fields: [string, string | undefined][] = [
    ['invoiceNumber', doc.invoiceNumber],
    ['issuer.name', doc.issuer.name],
    ['issuer.registrationNumber', doc.issuer.registrationNumber],
    ['recipientName', doc.recipientName],
    ['payee', doc.payee],
    ['template.title', template.title],
    ['template.footer', template.footer],
    ...(template.addressBlock ?? []).map((s, i): [string, string] => [`template.addressBlock[${i}]`, s]),
    ...doc.lines.flatMap((line, i): [string, string | undefined][] => [
      [`lines[${i}].description`, line.description],
      [`lines[${i}].quantity`, line.quantity],
      [`lines[${i}].unit`, line.unit],
    ]),
  ];
  for (const [field, value] of fields) {
    if (value === undefined) continue;
    if (typeof value !== 'string') fail(doc, `${field} is not text`);
    for (const font of [fonts.regular, fonts.bold]) {
      const missing = missingCharacters(font.face, value);
      if (missing.length > 0) {
        const list = missing.map((ch) => `${JSON.stringify(ch)} (${codePointName(ch)})`).join(', ');
        fail(
          doc,
          `${field} ${JSON.stringify(value)} has characters the invoice font (${font.face.postscriptName}) cannot draw: ${list}`,
        );
      }
    }
  }
}

function checkDocument(doc: InvoiceDocument): void {
  if (typeof doc !== 'object' || doc === null) throw new PdfError('invoice document is not an object');
  if (typeof doc.invoiceNumber !== 'string' || doc.invoiceNumber.trim() === '') {
    throw new PdfError('invoice document has no invoiceNumber');
  }
  checkDate(doc, 'issueDate', doc.issueDate);
  if (doc.dueDate !== undefined) checkDate(doc, 'dueDate', doc.dueDate);
  if (doc.transactionDate !== undefined) checkDate(doc, 'transactionDate', doc.transactionDate);
  if (doc.transactionPeriod !== undefined) {
    checkDate(doc, 'transactionPeriod.from', doc.transactionPeriod.from);
    checkDate(doc, 'transactionPeriod.to', doc.transactionPeriod.to);
  }
  if (typeof doc.issuer?.name !== 'string' || doc.issuer.name.trim() === '')
    fail(doc, 'issuer.name is empty');
  if (typeof doc.issuer.registrationNumber !== 'string' || !/^T\d{13}$/.test(doc.issuer.registrationNumber)) {
    fail(
      doc,
      `issuer.registrationNumber ${JSON.stringify(doc.issuer.registrationNumber)} is not T and 13 digits`,
    );
  }
  if (typeof doc.recipientName !== 'string' || doc.recipientName.trim() === '')
    fail(doc, 'recipientName is empty');
  if (doc.prices !== 'excluding' && doc.prices !== 'including') {
    fail(doc, `prices ${JSON.stringify(doc.prices)} is neither 'excluding' nor 'including'`);
  }
  if (!Array.isArray(doc.lines) || doc.lines.length === 0) fail(doc, 'has no lines');
  if (!Array.isArray(doc.rates) || doc.rates.length === 0) fail(doc, 'has no rates');
  doc.rates.forEach((rate, i) => {
    if (!(rate.category in CATEGORY_ORDER))
      fail(doc, `rates[${i}].category ${JSON.stringify(rate.category)} is unknown`);
    if (typeof rate.ratePercent !== 'number' || !Number.isFinite(rate.ratePercent) || rate.ratePercent < 0) {
      fail(doc, `rates[${i}].ratePercent ${String(rate.ratePercent)} is not a percentage`);
    }
    for (const key of ['taxable', 'tax', 'total'] as const) checkYen(doc, `rates[${i}].${key}`, rate[key]);
  });
  doc.lines.forEach((line, i) => {
    checkYen(doc, `lines[${i}].amount`, line.amount);
    if (line.transactionDate !== undefined)
      checkDate(doc, `lines[${i}].transactionDate`, line.transactionDate);
    if (!doc.rates.some((r) => r.category === line.taxCategory)) {
      fail(doc, `lines[${i}].taxCategory ${JSON.stringify(line.taxCategory)} has no entry in rates`);
    }
  });
  for (const key of ['subtotal', 'tax', 'total'] as const) checkYen(doc, key, doc[key]);
  if (!doc.transactionDate && !doc.transactionPeriod && !doc.lines.every((l) => l.transactionDate)) {
    fail(doc, 'needs a transactionDate, a transactionPeriod or a transactionDate on every line');
  }
}

type LogoKind = 'png' | 'jpeg';

function logoKind(logo: Uint8Array): LogoKind {
  if (!(logo instanceof Uint8Array)) throw new PdfError('template logo must be bytes (Uint8Array)');
  if (logo.length > MAX_LOGO_BYTES) {
    throw new PdfError(`template logo is ${logo.length} bytes; at most ${MAX_LOGO_BYTES}`);
  }
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (logo.length >= 8 && png.every((b, i) => logo[i] === b)) return 'png';
  if (logo.length >= 3 && logo[0] === 0xff && logo[1] === 0xd8 && logo[2] === 0xff) return 'jpeg';
  throw new PdfError('template logo is neither a PNG nor a JPEG (no PNG signature, no JPEG SOI marker)');
}

async function embedLogo(pdf: PDFDocument, logo: Uint8Array, kind: LogoKind): Promise<PDFImage> {
  try {
    return kind === 'png' ? await pdf.embedPng(logo) : await pdf.embedJpg(logo);
  } catch (cause) {
    throw new PdfError(
      `template logo could not be decoded as a ${kind.toUpperCase()}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** The logo's size in points: fitted into 40 mm × 15 mm, aspect kept. */
function logoSize(image: { width: number; height: number }): { width: number; height: number } {
  const scale = Math.min(LOGO_WIDTH / image.width, LOGO_HEIGHT / image.height);
  return { width: image.width * scale, height: image.height * scale };
}

/** Keys sorted, bytes as hex: the same input hashes the same whatever order its keys were written in. */
function canonical(value: unknown): string {
  if (value instanceof Uint8Array) return JSON.stringify({ bytes: Buffer.from(value).toString('hex') });
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---------------------------------------------------------------------------------------------
// Layout

interface Style {
  accent: Rgb;
  text: Rgb;
  title: string;
}

interface Column {
  key: 'date' | 'mark' | 'description' | 'quantity' | 'unitPrice' | 'rate' | 'amount';
  label: string;
  width: number;
  align: 'left' | 'right' | 'centre';
}

const BODY_SIZE = 8.5;
const HEADER_ROW_HEIGHT = 16;
const TOTALS_WIDTH = 270;

class Layout {
  readonly pages: Op[][] = [];
  private page: Op[] = [];
  /** Top-down cursor on the current page, in points from the page's top edge. */
  y = 0;
  readonly contentBottom: number;
  private readonly footerLines: string[];
  readonly columns: Column[];

  constructor(
    readonly doc: InvoiceDocument,
    readonly template: InvoiceTemplate,
    readonly style: Style,
    readonly ts: Typesetter,
    readonly logo: { width: number; height: number } | undefined,
  ) {
    this.footerLines = template.footer ? ts.wrap(template.footer, CONTENT_WIDTH - 60, 7.5, 'regular') : [];
    // The footer's lines stack up from the bottom margin; the page number sits on the last one.
    this.contentBottom =
      PAGE_HEIGHT - MARGIN - Math.max(1, this.footerLines.length) * 7.5 * LINE_SPACING - 10;
    const basis = doc.prices === 'including' ? '税込' : '税抜';
    const withDates = doc.lines.some((l) => l.transactionDate !== undefined);
    const fixed: Column[] = [
      ...(withDates ? [{ key: 'date', label: '取引日', width: 54, align: 'left' } as Column] : []),
      { key: 'mark', label: '', width: 12, align: 'centre' },
      { key: 'description', label: '品目', width: 0, align: 'left' },
      { key: 'quantity', label: '数量', width: 58, align: 'right' },
      { key: 'unitPrice', label: `単価（${basis}）`, width: 72, align: 'right' },
      { key: 'rate', label: '税率', width: 38, align: 'centre' },
      { key: 'amount', label: `金額（${basis}）`, width: 80, align: 'right' },
    ];
    const used = fixed.reduce((sum, c) => sum + c.width, 0);
    fixed.find((c) => c.key === 'description')!.width = CONTENT_WIDTH - used;
    this.columns = fixed;
  }

  private text(
    text: string,
    x: number,
    top: number,
    size: number,
    weight: Weight = 'regular',
    colour: Rgb = this.style.text,
  ): void {
    this.page.push({ kind: 'text', text, x, baseline: top + ASCENT * size, size, weight, colour });
  }

  private textRight(
    text: string,
    right: number,
    top: number,
    size: number,
    weight: Weight = 'regular',
    colour?: Rgb,
  ) {
    this.text(text, right - this.ts.width(text, size, weight), top, size, weight, colour);
  }

  /** One line that shrinks to fit `width`; aligned within [x, x + width]. */
  private fitted(
    field: string,
    text: string,
    x: number,
    width: number,
    top: number,
    size: number,
    align: 'left' | 'right' | 'centre',
    weight: Weight = 'regular',
    colour?: Rgb,
  ): void {
    const s = this.ts.fit(field, text, width, size, weight);
    const w = this.ts.width(text, s, weight);
    const at = align === 'left' ? x : align === 'right' ? x + width - w : x + (width - w) / 2;
    // Vertically centred on the line the unshrunk text would have used.
    this.text(text, at, top + ((size - s) * ASCENT) / 2, s, weight, colour);
  }

  /** Wrapped lines from `top`; returns the top of what follows. */
  private paragraph(
    text: string,
    x: number,
    width: number,
    top: number,
    size: number,
    weight: Weight = 'regular',
  ): number {
    for (const line of this.ts.wrap(text, width, size, weight)) {
      this.text(line, x, top, size, weight);
      top += size * LINE_SPACING;
    }
    return top;
  }

  private newPage(): void {
    this.page = [];
    this.pages.push(this.page);
  }

  private line(x1: number, x2: number, y: number, thickness: number, colour: Rgb): void {
    this.page.push({ kind: 'line', x1, x2, y, thickness, colour });
  }

  /** The first page's head: logo, title, issuer and recipient, figures of the invoice. */
  firstPageHeader(): void {
    const { doc, template, style, ts } = this;
    this.newPage();
    if (this.logo) this.page.push({ kind: 'logo', x: MARGIN, top: MARGIN, ...this.logo });
    const titleSize = 20;
    const title = style.title;
    this.fitted(
      'template.title',
      title,
      MARGIN + LOGO_WIDTH + 8,
      CONTENT_WIDTH - 2 * (LOGO_WIDTH + 8),
      MARGIN + 6,
      titleSize,
      'centre',
      'bold',
      style.accent,
    );
    const ruleY = MARGIN + LOGO_HEIGHT + 6;
    this.line(MARGIN, RIGHT, ruleY, 1.2, style.accent);

    // Right: the invoice's number and date, then the issuer.
    const rightX = RIGHT - 215;
    const rightWidth = RIGHT - rightX;
    let r = ruleY + 10;
    const pair = (label: string, value: string, field: string) => {
      this.text(label, rightX, r, 9);
      const labelWidth = 62;
      this.fitted(field, value, rightX + labelWidth, rightWidth - labelWidth, r, 9, 'right');
      r += 9 * LINE_SPACING;
    };
    pair('請求書番号', doc.invoiceNumber, 'invoiceNumber');
    pair('発行日', japaneseDate(doc.issueDate), 'issueDate');
    r += 6;
    r = this.paragraph(doc.issuer.name, rightX, rightWidth, r, 11, 'bold');
    r += 1;
    this.text(`登録番号 ${doc.issuer.registrationNumber}`, rightX, r, 9);
    r += 9 * LINE_SPACING;
    for (const line of template.addressBlock ?? []) r = this.paragraph(line, rightX, rightWidth, r, 8.5);

    // Left: the recipient, the amount billed, the dates.
    const leftWidth = rightX - MARGIN - 20;
    let l = ruleY + 12;
    const recipient = ts.wrap(`${doc.recipientName} 御中`, leftWidth, 14, 'bold');
    for (const line of recipient) {
      this.text(line, MARGIN, l, 14, 'bold');
      l += 14 * LINE_SPACING;
    }
    this.line(MARGIN, MARGIN + leftWidth, l - 2, 0.8, style.accent);
    l += 8;
    this.text('下記のとおりご請求申し上げます。', MARGIN, l, 9);
    l += 9 * LINE_SPACING + 6;
    const boxHeight = 30;
    this.page.push({
      kind: 'rect',
      x: MARGIN,
      top: l,
      width: leftWidth,
      height: boxHeight,
      stroke: style.accent,
    });
    this.page.push({ kind: 'rect', x: MARGIN, top: l, width: 96, height: boxHeight, fill: style.accent });
    this.text('ご請求金額', MARGIN + 8, l + 6, 10, 'bold', WHITE);
    this.text('（税込）', MARGIN + 8, l + 6 + 10 * 1.25, 7.5, 'regular', WHITE);
    this.fitted('total', formatYen(doc.total), MARGIN + 104, leftWidth - 112, l + 7, 16, 'right', 'bold');
    l += boxHeight + 10;
    const dateRow = (label: string, value: string, field: string) => {
      this.text(label, MARGIN, l, 9, 'bold');
      this.fitted(field, value, MARGIN + 66, leftWidth - 66, l, 9, 'left');
      l += 9 * LINE_SPACING;
    };
    if (doc.transactionPeriod) {
      const { from, to } = doc.transactionPeriod;
      dateRow('取引期間', `${japaneseDate(from)} 〜 ${japaneseDate(to)}`, 'transactionPeriod');
    }
    if (doc.transactionDate) dateRow('取引年月日', japaneseDate(doc.transactionDate), 'transactionDate');
    if (!doc.transactionPeriod && !doc.transactionDate)
      dateRow('取引年月日', '各明細に記載', 'transactionDate');
    if (doc.dueDate) dateRow('お支払期限', japaneseDate(doc.dueDate), 'dueDate');

    this.y = Math.max(l, r) + 14;
    // The table header and one row at least must fit under the head of the first page.
    if (this.y + 60 > this.contentBottom) {
      fail(doc, 'the first page has no room for the lines under the names and the address block');
    }
  }

  /** Later pages' head: which invoice this page continues. */
  continuationHeader(): void {
    const { doc, style } = this;
    this.newPage();
    const top = MARGIN;
    this.text(`${style.title}（続き）`, MARGIN, top, 11, 'bold', style.accent);
    this.fitted(
      'invoiceNumber',
      `請求書番号 ${doc.invoiceNumber}\u3000発行日 ${japaneseDate(doc.issueDate)}`,
      MARGIN + 160,
      CONTENT_WIDTH - 160,
      top + 2,
      9,
      'right',
    );
    this.line(MARGIN, RIGHT, top + 19, 1, style.accent);
    this.y = top + 28;
  }

  private tableHeader(): void {
    const { style } = this;
    this.page.push({
      kind: 'rect',
      x: MARGIN,
      top: this.y,
      width: CONTENT_WIDTH,
      height: HEADER_ROW_HEIGHT,
      fill: style.accent,
    });
    let x = MARGIN;
    for (const column of this.columns) {
      if (column.label) {
        this.fitted(
          `column ${column.label}`,
          column.label,
          x + CELL_PADDING,
          column.width - 2 * CELL_PADDING,
          this.y + 4,
          8,
          column.align,
          'bold',
          WHITE,
        );
      }
      x += column.width;
    }
    this.y += HEADER_ROW_HEIGHT;
  }

  private rateLabel(category: InvoiceDocumentLine['taxCategory']): string {
    if (category === 'exempt') return '非課税';
    const rate = this.doc.rates.find((r) => r.category === category)!;
    return `${rate.ratePercent}%`;
  }

  private rowOf(
    line: InvoiceDocumentLine,
    i: number,
  ): { cells: Map<Column['key'], string>; description: string[]; height: number } {
    const { doc, ts } = this;
    const cells = new Map<Column['key'], string>();
    if (line.transactionDate) cells.set('date', slashDate(line.transactionDate));
    if (line.taxCategory === 'reduced') cells.set('mark', '※');
    cells.set('quantity', quantityText(doc, `lines[${i}].quantity`, line));
    cells.set('unitPrice', unitPriceText(doc, `lines[${i}].unitPrice`, line.unitPrice));
    cells.set('rate', this.rateLabel(line.taxCategory));
    cells.set('amount', formatYen(line.amount));
    const descriptionColumn = this.columns.find((c) => c.key === 'description')!;
    const description = ts.wrap(
      line.description,
      descriptionColumn.width - 2 * CELL_PADDING,
      BODY_SIZE,
      'regular',
    );
    const height = description.length * BODY_SIZE * LINE_SPACING + 2 * CELL_PADDING + 1;
    return { cells, description, height };
  }

  /** The line items, the table header at the top of every page they run onto. */
  table(): void {
    const { doc, style } = this;
    const basis = doc.prices === 'including' ? '単価・金額は税込表示です' : '単価・金額は税抜表示です';
    this.textRight(basis, RIGHT, this.y, 7.5);
    this.y += 7.5 * LINE_SPACING + 2;
    this.tableHeader();
    const room = this.contentBottom - (MARGIN + 28 + HEADER_ROW_HEIGHT);
    doc.lines.forEach((line, i) => {
      const row = this.rowOf(line, i);
      if (row.height > room) fail(doc, `lines[${i}].description is too long to fit one page`);
      if (this.y + row.height > this.contentBottom) {
        this.continuationHeader();
        this.tableHeader();
      }
      const top = this.y + CELL_PADDING;
      let x = MARGIN;
      for (const column of this.columns) {
        const inner = column.width - 2 * CELL_PADDING;
        if (column.key === 'description') {
          row.description.forEach((text, k) =>
            this.text(text, x + CELL_PADDING, top + k * BODY_SIZE * LINE_SPACING, BODY_SIZE),
          );
        } else {
          const value = row.cells.get(column.key);
          if (value)
            this.fitted(
              `lines[${i}].${column.key}`,
              value,
              x + CELL_PADDING,
              inner,
              top,
              BODY_SIZE,
              column.align,
              column.key === 'mark' ? 'bold' : 'regular',
            );
        }
        x += column.width;
      }
      this.y += row.height;
      this.line(MARGIN, RIGHT, this.y, 0.5, RULE_GREY);
    });
    this.line(MARGIN, RIGHT, this.y, 1, style.accent);
  }

  /** Rows of the totals block: [label, amount, tax label, tax amount]. */
  private totalsRows(): [string, number, string?, number?][] {
    const { doc } = this;
    const including = doc.prices === 'including';
    const basis = including ? '（税込）' : '（税抜）';
    const rows: [string, number, string?, number?][] = [];
    rows.push(including ? ['合計（税込）', doc.total] : ['小計（税抜）', doc.subtotal]);
    const rates = [...doc.rates].sort((a, b) => CATEGORY_ORDER[a.category] - CATEGORY_ORDER[b.category]);
    for (const rate of rates) rows.push(this.rateRow(rate, basis, including));
    rows.push([including ? '内消費税合計' : '消費税合計', doc.tax]);
    return rows;
  }

  private rateRow(
    rate: InvoiceDocumentRate,
    basis: string,
    including: boolean,
  ): [string, number, string?, number?] {
    if (rate.category === 'exempt') return ['非課税', including ? rate.total : rate.taxable];
    const mark = rate.category === 'reduced' ? '※' : '';
    return [
      `${rate.ratePercent}%対象${mark}${basis}`,
      including ? rate.total : rate.taxable,
      including ? '内消費税' : '消費税',
      rate.tax,
    ];
  }

  /** After the last line: the reduced-rate note, the payee, the totals; all on one page. */
  totals(): void {
    const { doc, style, ts } = this;
    const rows = this.totalsRows();
    const rowHeight = 9 * LINE_SPACING + 3;
    const totalsHeight = 6 + rows.length * rowHeight + 6 + 12 * LINE_SPACING + 6;
    const leftWidth = CONTENT_WIDTH - TOTALS_WIDTH - 20;
    const hasReduced = doc.lines.some((l) => l.taxCategory === 'reduced');
    const payeeLines = doc.payee ? ts.wrap(doc.payee, leftWidth, 9, 'regular') : [];
    const leftHeight =
      6 +
      (hasReduced ? 8 * LINE_SPACING + 6 : 0) +
      (payeeLines.length > 0 ? (1 + payeeLines.length) * 9 * LINE_SPACING : 0);
    if (this.y + Math.max(totalsHeight, leftHeight) > this.contentBottom) this.continuationHeader();

    let l = this.y + 6;
    if (hasReduced) {
      this.text('※は軽減税率対象', MARGIN, l, 8);
      l += 8 * LINE_SPACING + 6;
    }
    if (payeeLines.length > 0) {
      this.text('お振込先', MARGIN, l, 9, 'bold');
      l += 9 * LINE_SPACING;
      for (const line of payeeLines) {
        this.text(line, MARGIN, l, 9);
        l += 9 * LINE_SPACING;
      }
    }

    const x = RIGHT - TOTALS_WIDTH;
    let t = this.y + 6;
    for (const [label, amount, taxLabel, tax] of rows) {
      this.fitted('totals', label, x, 92, t, 9, 'left');
      this.fitted('totals', formatYen(amount), x + 92, 70, t, 9, 'right');
      if (taxLabel !== undefined && tax !== undefined) {
        this.fitted('totals', taxLabel, x + 172, 44, t, 9, 'left');
        this.fitted('totals', formatYen(tax), x + 214, TOTALS_WIDTH - 214, t, 9, 'right');
      }
      t += rowHeight;
      this.line(x, RIGHT, t - 3, 0.5, RULE_GREY);
    }
    t += 3;
    this.line(x, RIGHT, t, 1.2, style.accent);
    t += 5;
    this.text('ご請求金額（税込）', x, t, 12, 'bold', style.accent);
    this.fitted('total', formatYen(doc.total), x + 130, TOTALS_WIDTH - 130, t, 12, 'right', 'bold');
    t += 12 * LINE_SPACING;
    this.y = Math.max(t, l);
  }

  /** On every page: the footer text and "n / N". */
  footers(): void {
    const size = 7.5;
    const last = PAGE_HEIGHT - MARGIN - size;
    this.pages.forEach((page, i) => {
      this.page = page;
      this.line(MARGIN, RIGHT, this.contentBottom + 5, 0.5, this.style.accent);
      const first = last - (this.footerLines.length - 1) * size * LINE_SPACING;
      this.footerLines.forEach((line, k) =>
        this.text(line, MARGIN, first + k * size * LINE_SPACING, size, 'regular', this.style.text),
      );
      this.textRight(`${i + 1} / ${this.pages.length}`, RIGHT, last, 8);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing

function pdfColour(c: Rgb) {
  return rgb(c[0], c[1], c[2]);
}

function charactersOf(pages: Op[][], weight: Weight): string[] {
  const chars = new Set<string>();
  for (const op of pages.flat())
    if (op.kind === 'text' && op.weight === weight) for (const ch of op.text) chars.add(ch);
  return [...chars];
}

function drawPage(
  page: PDFPage,
  ops: Op[],
  fonts: Record<Weight, PDFFont>,
  logo: PDFImage | undefined,
): void {
  // Switching fonts only when needed: every drawText({ font }) adds another key to the font resources.
  let current: PDFFont | undefined;
  for (const op of ops) {
    switch (op.kind) {
      case 'text': {
        const font = fonts[op.weight];
        if (font !== current) page.setFont((current = font));
        page.drawText(op.text, {
          x: op.x,
          y: PAGE_HEIGHT - op.baseline,
          size: op.size,
          color: pdfColour(op.colour),
        });
        break;
      }
      case 'rect':
        page.drawRectangle({
          x: op.x,
          y: PAGE_HEIGHT - op.top - op.height,
          width: op.width,
          height: op.height,
          color: op.fill ? pdfColour(op.fill) : undefined,
          borderColor: op.stroke ? pdfColour(op.stroke) : undefined,
          borderWidth: op.stroke ? 1 : 0,
        });
        break;
      case 'line':
        page.drawLine({
          start: { x: op.x1, y: PAGE_HEIGHT - op.y },
          end: { x: op.x2, y: PAGE_HEIGHT - op.y },
          thickness: op.thickness,
          color: pdfColour(op.colour),
        });
        break;
      case 'logo':
        page.drawImage(logo!, {
          x: op.x,
          y: PAGE_HEIGHT - op.top - op.height,
          width: op.width,
          height: op.height,
        });
        break;
    }
  }
}

/**
 * Renders `doc` as a qualified invoice in `template`'s look. Throws a PdfError naming the field for
 * bad input: a date that is no date, a colour that is no '#RRGGBB', a logo that is neither PNG nor
 * JPEG, a character the font cannot draw, a figure that cannot be shrunk into its column.
 */
export async function renderQualifiedInvoice(
  doc: InvoiceDocument,
  template: InvoiceTemplate = {},
): Promise<Uint8Array> {
  checkDocument(doc);
  const style: Style = {
    accent: parseColour('accentColour', template.accentColour, DEFAULT_ACCENT),
    text: parseColour('textColour', template.textColour, DEFAULT_TEXT),
    title: template.title ?? DEFAULT_TITLE,
  };
  if (typeof style.title !== 'string' || style.title.trim() === '')
    throw new PdfError('template title is empty');
  if (template.addressBlock !== undefined && !Array.isArray(template.addressBlock)) {
    throw new PdfError('template addressBlock must be a list of lines');
  }
  const kind = template.logo !== undefined ? logoKind(template.logo) : undefined;
  const fonts: Fonts = { regular: loadJapaneseFont(REGULAR_FILE), bold: loadJapaneseFont(BOLD_FILE) };
  checkDrawable(doc, template, fonts);

  const pdf = await PDFDocument.create({ updateMetadata: false });
  const logo = template.logo && kind ? await embedLogo(pdf, template.logo, kind) : undefined;

  const layout = new Layout(doc, template, style, new Typesetter(fonts), logo ? logoSize(logo) : undefined);
  layout.firstPageHeader();
  layout.table();
  layout.totals();
  layout.footers();

  const embedded: Record<Weight, PDFFont> = {
    regular: await embedJapaneseFont(pdf, fonts.regular, charactersOf(layout.pages, 'regular')),
    bold: await embedJapaneseFont(pdf, fonts.bold, charactersOf(layout.pages, 'bold')),
  };
  for (const ops of layout.pages) drawPage(pdf.addPage([PAGE_WIDTH, PAGE_HEIGHT]), ops, embedded, logo);

  const issued = new Date(`${doc.issueDate}T00:00:00+09:00`);
  pdf.setTitle(`${style.title} ${doc.invoiceNumber}`);
  pdf.setAuthor(doc.issuer.name);
  pdf.setSubject(`${doc.recipientName} 御中`);
  pdf.setLanguage('ja-JP');
  pdf.setCreator(PRODUCER);
  pdf.setProducer(PRODUCER);
  pdf.setCreationDate(issued);
  pdf.setModificationDate(issued);
  const id = createHash('sha256').update(canonical({ doc, template })).digest('hex').slice(0, 32);
  pdf.context.trailerInfo.ID = pdf.context.obj([PDFHexString.of(id), PDFHexString.of(id)]);
  return pdf.save({ useObjectStreams: false });
}
