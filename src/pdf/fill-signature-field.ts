// Seals into a signature field the input already has, for certified inputs where adding a field is
// not a permitted change (see modification-permissions.ts). Only the field's /V is set, and the
// AcroForm's /SigFlags only when its bits are missing, so the update rewrites as little as it can.
//
// The field's /Lock is honoured as Acrobat and pyHanko do: the signature carries a FieldMDP SigRef
// with the lock's /Action, /Fields and /P (ISO 32000-1 §12.7.4.5, Table 253; PDF 2.0 /P on the lock).
// A /P 1 there locks the whole document once sealed: allowed, and reported to the caller.
import { PDFArray, PDFDict, PDFDocument, PDFName, PDFNumber, type PDFObject } from 'pdf-lib';
import { catalogRef, type EmptySignatureField, type MdpPermission } from './modification-permissions';
import { PdfError } from './pdf-error';
import {
  type AddedSignatureField,
  createSignatureDictionary,
  SIG_FLAGS_APPEND_ONLY,
  SIG_FLAGS_SIGNATURES_EXIST,
  type SignatureFieldOptions,
} from './signature-field';

export interface FilledSignatureField extends AddedSignatureField {
  /** The /P of the field's /Lock, now in force for every later change. */
  lockPermission?: MdpPermission;
}

/** The SigRef that records the field's lock in the signature (pyHanko writes the same shape). */
function fieldMdpReference(doc: PDFDocument, lock: PDFDict, fieldName: string) {
  const { context } = doc;
  const action = lock.lookup(PDFName.of('Action'));
  if (!(action instanceof PDFName)) {
    throw new PdfError(`signature field ${fieldName} has a /Lock without a readable /Action`);
  }
  const params: Record<string, PDFObject> = {
    Type: PDFName.of('TransformParams'),
    Action: action,
    V: PDFName.of('1.2'),
  };
  const fields = lock.lookupMaybe(PDFName.of('Fields'), PDFArray);
  if (fields) params.Fields = fields.clone(context);
  const p = lock.lookup(PDFName.of('P'));
  let lockPermission: MdpPermission | undefined;
  if (p !== undefined) {
    const n = p instanceof PDFNumber ? p.asNumber() : NaN;
    if (n !== 1 && n !== 2 && n !== 3) {
      throw new PdfError(`signature field ${fieldName} has a /Lock with an unreadable /P ${String(p)}`);
    }
    lockPermission = n;
    params.P = PDFNumber.of(n);
  }
  const sigRef = context.obj({
    Type: PDFName.of('SigRef'),
    TransformMethod: PDFName.of('FieldMDP'),
    Data: catalogRef(doc),
    TransformParams: context.obj(params),
  });
  return { reference: context.obj([sigRef]), lockPermission };
}

export function fillSignatureField(
  doc: PDFDocument,
  field: EmptySignatureField,
  options: SignatureFieldOptions,
): FilledSignatureField {
  const locked = field.lock ? fieldMdpReference(doc, field.lock, field.name) : undefined;
  const { dictBytes, ref } = createSignatureDictionary(
    doc.context,
    options,
    locked ? { Reference: locked.reference } : {},
  );
  field.dict.set(PDFName.of('V'), ref);

  const acroForm = doc.catalog.lookupMaybe(PDFName.of('AcroForm'), PDFDict);
  if (!acroForm) throw new PdfError(`signature field ${field.name} is not reachable from an /AcroForm`);
  const sigFlags = acroForm.lookupMaybe(PDFName.of('SigFlags'), PDFNumber)?.asNumber() ?? 0;
  const wanted = sigFlags | SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY;
  if (wanted !== sigFlags) acroForm.set(PDFName.of('SigFlags'), PDFNumber.of(wanted));

  return { dictBytes, fieldName: field.name, lockPermission: locked?.lockPermission };
}
