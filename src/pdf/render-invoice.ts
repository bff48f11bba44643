// Renders a plausible one-page A4 invoice for demos, fixtures and benchmarks. Output is a pure function
// of the input (fixed dates, producer and trailer /ID), so fixtures stay byte-stable. Standard Helvetica
// only encodes WinAnsi, so Japanese text is rejected with a PdfError naming the field.
import { createHash } from 'node:crypto';
import { PDFDocument, PDFFont, PDFHexString, rgb, StandardFonts } from 'pdf-lib';
import { PdfError } from './pdf-error';

export interface SampleInvoice {
  tenantName: string;
  invoiceNumber: string;
  customerName: string;
  /** Total billed in JPY, consumption tax (10%) included. */
  amount: number;
  /** YYYY-MM-DD; also becomes the document's CreationDate/ModDate (00:00 UTC). */
  issueDate: string;
  /** Save with object streams and an xref stream instead of a classic xref table. Default false. */
  useObjectStreams?: boolean;
}

const A4: [number, number] = [595.28, 841.89];
const MARGIN = 56;
const TAX_RATE = 0.1;

function yen(n: number): string {
  // Locale-independent grouping so output does not depend on the machine's ICU data.
  return `JPY ${String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;
}

function checkEncodable(font: PDFFont, field: string, value: string): void {
  // @cantoo/pdf-lib silently draws '?' for characters WinAnsi lacks, so check up front.
  const supported = new Set(font.getCharacterSet());
  const bad = [...value].find((ch) => !supported.has(ch.codePointAt(0)!));
  if (bad !== undefined) {
    throw new PdfError(
      `invoice field ${field} (${JSON.stringify(value)}) has ${JSON.stringify(bad)}, which standard Helvetica cannot encode; use ASCII/romaji`,
    );
  }
}

export async function renderSampleInvoice(invoice: SampleInvoice): Promise<Buffer> {
  const { tenantName, invoiceNumber, customerName, amount, issueDate } = invoice;
  const issued = /^\d{4}-\d{2}-\d{2}$/.test(issueDate) ? new Date(`${issueDate}T00:00:00Z`) : new Date(NaN);
  if (Number.isNaN(issued.getTime())) {
    throw new PdfError(`invoice ${invoiceNumber}: issueDate ${issueDate} is not YYYY-MM-DD`);
  }
  if (!Number.isFinite(amount) || amount < 0) {
    throw new PdfError(`invoice ${invoiceNumber}: amount ${amount} is not a non-negative number`);
  }

  const doc = await PDFDocument.create({ updateMetadata: false });
  const regular = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  for (const [field, value] of Object.entries({ tenantName, invoiceNumber, customerName })) {
    checkEncodable(regular, field, value);
  }

  const page = doc.addPage(A4);
  const grey = rgb(0.4, 0.4, 0.4);
  const right = A4[0] - MARGIN;
  // Switching fonts only when needed: every drawText({ font }) adds another key to the font resources.
  let current: PDFFont | undefined;
  const useFont = (font: PDFFont) => {
    if (font !== current) page.setFont((current = font));
  };
  const text = (s: string, x: number, y: number, size = 10, font = regular) => {
    useFont(font);
    page.drawText(s, { x, y, size, color: rgb(0, 0, 0) });
  };
  const textRight = (s: string, y: number, size = 10, font = regular) =>
    text(s, right - font.widthOfTextAtSize(s, size), y, size, font);

  let y = A4[1] - MARGIN - 10;
  text(tenantName, MARGIN, y, 16, bold);
  textRight('INVOICE', y, 22, bold);
  y -= 18;
  useFont(regular);
  page.drawText('Qualified invoice issuer (registration on file)', { x: MARGIN, y, size: 8, color: grey });
  y -= 40;
  text('Bill to', MARGIN, y, 9, bold);
  textRight(`Invoice no. ${invoiceNumber}`, y);
  y -= 15;
  text(customerName, MARGIN, y, 12);
  textRight(`Issue date ${issueDate}`, y);
  y -= 15;
  textRight('Payment terms: 30 days net', y);

  y -= 45;
  const cols = [MARGIN, 330, 400];
  page.drawRectangle({
    x: MARGIN - 4,
    y: y - 6,
    width: right - MARGIN + 8,
    height: 20,
    color: rgb(0.92, 0.92, 0.92),
  });
  text('Description', cols[0]!, y, 10, bold);
  text('Qty', cols[1]!, y, 10, bold);
  text('Unit price', cols[2]!, y, 10, bold);
  textRight('Amount', y, 10, bold);

  const subtotal = Math.round(amount / (1 + TAX_RATE));
  const tax = Math.round(amount) - subtotal;
  y -= 24;
  text('Professional services (monthly)', cols[0]!, y);
  text('1', cols[1]!, y);
  text(yen(subtotal), cols[2]!, y);
  textRight(yen(subtotal), y);
  y -= 12;
  page.drawLine({ start: { x: MARGIN - 4, y }, end: { x: right + 4, y }, thickness: 0.5, color: grey });

  y -= 20;
  for (const [label, value, font] of [
    ['Subtotal', subtotal, regular],
    ['Consumption tax 10%', tax, regular],
    ['Total due', Math.round(amount), bold],
  ] as const) {
    text(label, cols[1]!, y, 10, font);
    textRight(yen(value), y, 10, font);
    y -= 16;
  }

  useFont(regular);
  page.drawText('This document carries an electronic seal (e-seal) of the issuer. Do not alter.', {
    x: MARGIN,
    y: MARGIN,
    size: 8,
    color: grey,
  });

  doc.setTitle(`Invoice ${invoiceNumber}`);
  doc.setAuthor(tenantName);
  doc.setCreator('nightly-eseal-worker');
  doc.setProducer('nightly-eseal-worker');
  doc.setCreationDate(issued);
  doc.setModificationDate(issued);
  const id = createHash('sha256')
    .update(JSON.stringify([tenantName, invoiceNumber, customerName, amount, issueDate]))
    .digest('hex')
    .slice(0, 32);
  doc.context.trailerInfo.ID = doc.context.obj([PDFHexString.of(id), PDFHexString.of(id)]);

  const bytes = await doc.save({ useObjectStreams: invoice.useObjectStreams ?? false });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
