// A long invoice for the fast-prepare tests and benchmark: 14 A4 pages of line items (about 50 KB),
// a pure function of its options like renderSampleInvoice, so fixtures and figures stay comparable.
import { PDFDocument, PDFHexString, StandardFonts } from 'pdf-lib';

export interface MultiPageInvoiceOptions {
  pages?: number;
  /** Line items per page; 55 gives about 50 KB for 14 pages. */
  linesPerPage?: number;
  useObjectStreams?: boolean;
}

export async function renderMultiPageInvoice(options: MultiPageInvoiceOptions = {}): Promise<Buffer> {
  const { pages = 14, linesPerPage = 55, useObjectStreams = false } = options;
  const doc = await PDFDocument.create({ updateMetadata: false });
  const font = await doc.embedFont(StandardFonts.Helvetica);
  doc.setTitle('Invoice INV-2025-0142 (detail)');
  doc.setCreationDate(new Date('2025-01-31T00:00:00Z'));
  doc.setModificationDate(new Date('2025-01-31T00:00:00Z'));
  for (let p = 0; p < pages; p++) {
    const page = doc.addPage([595.28, 841.89]);
    page.drawText(`Invoice INV-2025-0142, page ${p + 1} of ${pages}`, { x: 56, y: 800, size: 12, font });
    for (let i = 0; i < linesPerPage; i++) {
      const item = p * linesPerPage + i + 1;
      // Amounts differ per line so the content streams do not compress to nothing.
      const amount = ((item * 7919) % 100000) + 100;
      page.drawText(
        `${String(item).padStart(4, '0')}  Delivery ${item * 37}  qty ${(item % 9) + 1}  JPY ${amount}`,
        {
          x: 56,
          y: 770 - i * 13.5,
          size: 9,
          font,
        },
      );
    }
  }
  const id = PDFHexString.of('6d756c74692d706167652d696e766f69');
  doc.context.trailerInfo.ID = doc.context.obj([id, id]);
  return Buffer.from(await doc.save({ useObjectStreams }));
}
