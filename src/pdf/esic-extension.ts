// PAdES structures (DSS, document timestamps) in a PDF 1.x file are declared by the ESIC developer
// extension in the catalog (ETSI EN 319 142-1, 5.4.1 / 5.5: /Extensions << /ESIC << /BaseVersion /1.7
// /ExtensionLevel 1 >> >>), as pyHanko writes it. PDF 2.0 has them built in, so nothing is added there.
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
