// PAdES structures (DSS, document timestamps) come from PDF 2.0; a PDF 1.x file that carries them
// declares the ETSI developer extension in the catalog, /Extensions << /ESIC << /BaseVersion /1.7
// /ExtensionLevel 1 >> >>, as pyHanko writes it for PAdES output below 2.0. PDF 2.0 files get nothing.
import { PDFDict, PDFDocument, PDFName, PDFNumber } from 'pdf-lib';

const ESIC = PDFName.of('ESIC');
const EXTENSIONS = PDFName.of('Extensions');

function isPdf2(doc: PDFDocument, input: Buffer): boolean {
  const header = /^%PDF-(\d)\./.exec(input.toString('latin1', input.indexOf('%PDF-', 0, 'latin1'), 1024));
  const version = doc.catalog.lookupMaybe(PDFName.of('Version'), PDFName)?.asString();
  return header?.[1] === '2' || /^\/2\./.test(version ?? '');
}

/** Adds the ESIC extension to the catalog unless it (or PDF 2.0) is already there; keeps other extensions. */
export function ensureEsicExtension(doc: PDFDocument, input: Buffer): void {
  if (isPdf2(doc, input)) return;
  let extensions = doc.catalog.lookupMaybe(EXTENSIONS, PDFDict);
  if (extensions?.has(ESIC)) return;
  if (!extensions) {
    extensions = doc.context.obj({});
    doc.catalog.set(EXTENSIONS, extensions);
  }
  extensions.set(ESIC, doc.context.obj({ BaseVersion: PDFName.of('1.7'), ExtensionLevel: PDFNumber.of(1) }));
}
