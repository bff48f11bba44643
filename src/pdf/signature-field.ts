// Adds a signature field (invisible, or showing a seal built by seal-appearance.ts) whose value is a
// signature dictionary with an empty placeholder.
// Adapted from @signpdf/placeholder-pdf-lib, which we do not call directly because it writes /Reason,
// /Name and /Location as raw literal strings (Japanese names or a stray parenthesis corrupt the file)
// and always names the field "Signature1" (a duplicate when the input already carries a signature).
import {
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFHexString,
  PDFInvalidObject,
  PDFName,
  PDFNumber,
  PDFObject,
  PDFRef,
  PDFString,
  type PDFContext,
} from 'pdf-lib';
import type { BuiltSealAppearance } from './seal-appearance';

/** Stands in for the three ByteRange numbers until the file's final layout is known. */
export const BYTE_RANGE_PLACEHOLDER = '**********';

export interface SignatureFieldOptions {
  /** /Type of the value: 'Sig' (default) or 'DocTimeStamp' for a document timestamp (ISO 32000-2 12.8.5). */
  type?: 'Sig' | 'DocTimeStamp';
  /** Written as /M when given; a document timestamp has none (its time is in the token). */
  signingTime?: Date;
  signatureBytes: number;
  subFilter: string;
  reason?: string;
  name?: string;
  location?: string;
  contactInfo?: string;
  /** A visible seal (from buildSealAppearance); without it the widget is invisible on page 1. */
  appearance?: BuiltSealAppearance;
}

export interface AddedSignatureField {
  /** The signature dictionary exactly as it will appear in the file. */
  dictBytes: Buffer;
  fieldName: string;
}

export const SIG_FLAGS_SIGNATURES_EXIST = 1;
export const SIG_FLAGS_APPEND_ONLY = 2;
const ANNOT_FLAGS_PRINT_LOCKED = 4 | 128;

/** A PDF text string (§7.9.2.2): plain ASCII stays literal, anything else becomes UTF-16BE with a BOM. */
export function pdfTextString(value: string): PDFString | PDFHexString {
  // pdf-lib does not escape literal strings, so parentheses and backslashes go the hex route too.
  return /^[\x20-\x7e]*$/.test(value) && !/[()\\]/.test(value)
    ? PDFString.of(value)
    : PDFHexString.fromText(value);
}

function existingFieldNames(fields: PDFArray | undefined): Set<string> {
  const names = new Set<string>();
  if (!fields) return names;
  for (let i = 0; i < fields.size(); i++) {
    const field = fields.lookup(i);
    if (!(field instanceof PDFDict)) continue;
    const t = field.lookup(PDFName.of('T'));
    if (t instanceof PDFString || t instanceof PDFHexString) names.add(t.decodeText());
  }
  return names;
}

export interface SignatureDictionary {
  /** The signature dictionary exactly as it will appear in the file. */
  dictBytes: Buffer;
  ref: PDFRef;
}

/**
 * Registers a signature dictionary with an empty placeholder. `extra` entries (a /Reference array for
 * a field lock) come last, so prepare still finds /Contents and /ByteRange by their fixed layout.
 */
export function createSignatureDictionary(
  context: PDFContext,
  options: SignatureFieldOptions,
  extra: Record<string, PDFObject> = {},
): SignatureDictionary {
  const byteRange = PDFArray.withContext(context);
  byteRange.push(PDFNumber.of(0));
  for (let i = 0; i < 3; i++) byteRange.push(PDFName.of(BYTE_RANGE_PLACEHOLDER));

  const entries: Record<string, PDFObject> = {
    Type: PDFName.of(options.type ?? 'Sig'),
    Filter: PDFName.of('Adobe.PPKLite'),
    SubFilter: PDFName.of(options.subFilter),
    ByteRange: byteRange,
    Contents: PDFHexString.of(''), // the zeros are spliced in below
  };
  if (options.signingTime !== undefined) entries.M = PDFString.fromDate(options.signingTime);
  if (options.reason !== undefined) entries.Reason = pdfTextString(options.reason);
  if (options.name !== undefined) entries.Name = pdfTextString(options.name);
  if (options.location !== undefined) entries.Location = pdfTextString(options.location);
  if (options.contactInfo !== undefined) entries.ContactInfo = pdfTextString(options.contactInfo);
  const sigDict = context.obj({ ...entries, ...extra });

  // Frozen as raw bytes so no writer can move it into an object stream (the ByteRange must address
  // /Contents in the file itself) and so prepare can find it again byte for byte.
  const written = Buffer.alloc(sigDict.sizeInBytes());
  sigDict.copyBytesInto(written, 0);
  // The placeholder's zeros by one fill rather than pdf-lib's copy character by character (16 K of
  // them by default, a fifth of the fast prepare path's CPU). /Contents precedes `extra`, so the
  // first "/Contents <>" is ours.
  const at = written.indexOf('/Contents <>', 0, 'latin1') + '/Contents <'.length;
  const dictBytes = Buffer.concat([
    written.subarray(0, at),
    Buffer.alloc(options.signatureBytes * 2, 0x30),
    written.subarray(at),
  ]);
  return { dictBytes, ref: context.register(PDFInvalidObject.of(dictBytes)) };
}

export function addSignatureField(doc: PDFDocument, options: SignatureFieldOptions): AddedSignatureField {
  const { context } = doc;
  const page = doc.getPage(options.appearance?.pageIndex ?? 0);
  const { dictBytes, ref: sigRef } = createSignatureDictionary(context, options);

  let acroForm = doc.catalog.lookupMaybe(PDFName.of('AcroForm'), PDFDict);
  if (!acroForm) {
    acroForm = context.obj({ Fields: [] });
    doc.catalog.set(PDFName.of('AcroForm'), context.register(acroForm));
  }
  let fields = acroForm.lookupMaybe(PDFName.of('Fields'), PDFArray);
  if (!fields) {
    fields = context.obj([]);
    acroForm.set(PDFName.of('Fields'), fields);
  }
  const taken = existingFieldNames(fields);
  let n = 1;
  while (taken.has(`Signature${n}`)) n++;
  const fieldName = `Signature${n}`;

  // Invisible unless a seal was built; even then an (empty) appearance stream, as PDF/A insists.
  const appearance =
    options.appearance?.appearance ??
    context.register(context.formXObject([], { BBox: [0, 0, 0, 0], Resources: {} }));
  const widget = context.obj({
    Type: 'Annot',
    Subtype: 'Widget',
    FT: 'Sig',
    Rect: options.appearance?.rect ?? [0, 0, 0, 0],
    V: sigRef,
    T: PDFString.of(fieldName),
    F: ANNOT_FLAGS_PRINT_LOCKED,
    P: page.ref,
    AP: { N: appearance },
  });
  const widgetRef: PDFRef = context.register(widget);

  const annots = page.node.lookupMaybe(PDFName.of('Annots'), PDFArray);
  if (annots) {
    annots.push(widgetRef);
  } else {
    page.node.set(PDFName.of('Annots'), context.obj([widgetRef]));
  }

  const sigFlags = acroForm.lookupMaybe(PDFName.of('SigFlags'), PDFNumber)?.asNumber() ?? 0;
  acroForm.set(
    PDFName.of('SigFlags'),
    PDFNumber.of(sigFlags | SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY),
  );
  fields.push(widgetRef);

  return { dictBytes, fieldName };
}
