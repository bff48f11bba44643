// What earlier signatures in the input allow a later revision to change, and so where a seal may go.
// A certification signature (catalog /Perms /DocMDP, ISO 32000-1 §12.8.2.2) states P=1 (no changes),
// P=2 (form filling and signing) or P=3 (also annotations); an approval signature's FieldMDP
// transform (§12.8.2.3) or its field's /Lock (§12.7.4.5) names fields that must not change after it.
//
// Where a seal may go under DocMDP P=2/P=3: into an existing empty signature field only. Table 254
// allows "filling in forms ... and signing", and Adobe's "Allowed and disallowed changes" (Acrobat 9
// Digital Signatures, Changes and Improvements) lists "adding form fields" as disallowed for every
// certification level (adding signature fields is allowed only on signed but uncertified documents);
// Apryse says the same of a second signature field after a P=2 certification. pyHanko's difference
// analysis is laxer (a new invisible signature field passes, a visible one fails after certification
// by default) but nothing stricter than Adobe should reject a filled existing field, so that is the
// one behaviour every validator accepts. Filling a field changes it, so a field that a FieldMDP lock
// covers is never filled.
import {
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFHexString,
  PDFName,
  PDFNull,
  PDFNumber,
  PDFRef,
  PDFString,
} from 'pdf-lib';
import { PdfError } from './pdf-error';

export type MdpPermission = 1 | 2 | 3;

/** Fields that must not change after a signature (FieldMDP /Action and /Fields). */
export interface FieldLock {
  action: 'All' | 'Include' | 'Exclude';
  /** Fully qualified field names; ignored for /All. */
  fields: string[];
  /** The signed field whose signature (or /Lock) imposes the lock. */
  lockedBy: string;
}

/** A strictest-wins document permission, with the signature it comes from. */
export interface DocumentPermission {
  p: MdpPermission;
  /** 'certification': catalog /Perms /DocMDP; 'field-lock': /P of a signed field's FieldMDP (PDF 2.0). */
  source: 'certification' | 'field-lock';
  /** The signature field that carries it, when it could be found. */
  fieldName?: string;
}

/** A signature field without a value: a place an earlier author left for a signature. */
export interface EmptySignatureField {
  /** Fully qualified name (the /T of the field and its ancestors joined by dots). */
  name: string;
  /** The terminal field dictionary; /V goes here. */
  dict: PDFDict;
  /** Its /Lock (SigFieldLock), honoured by whoever signs it. */
  lock?: PDFDict;
}

export interface ModificationPermissions {
  /** Undefined when neither a certification nor a field lock restricts the whole document. */
  document?: DocumentPermission;
  locks: FieldLock[];
  emptySignatureFields: EmptySignatureField[];
}

export type SealTarget = { kind: 'new-field' } | { kind: 'existing-field'; field: EmptySignatureField };

const DEFAULT_DOCMDP_P: MdpPermission = 2; // Table 254: P is optional, default 2
const MAX_FIELD_DEPTH = 32; // field trees are shallow; a deeper one is a loop or an attack

const name = (n: string) => PDFName.of(n);

function text(value: unknown): string | undefined {
  return value instanceof PDFString || value instanceof PDFHexString ? value.decodeText() : undefined;
}

function permission(params: PDFDict | undefined, where: string, fallback?: MdpPermission) {
  const raw = params?.lookup(name('P'));
  if (raw === undefined) return fallback;
  const p = raw instanceof PDFNumber ? raw.asNumber() : NaN;
  if (p !== 1 && p !== 2 && p !== 3) {
    throw new PdfError(
      `input PDF has an unreadable ${where} permission P=${String(raw)} (must be 1, 2 or 3)`,
    );
  }
  return p;
}

/** The SigRef dictionaries of a signature dictionary's /Reference with the given /TransformMethod. */
function sigRefs(sigDict: PDFDict, method: string): PDFDict[] {
  const refs = sigDict.lookupMaybe(name('Reference'), PDFArray);
  const found: PDFDict[] = [];
  for (let i = 0; refs && i < refs.size(); i++) {
    const ref = refs.lookup(i);
    if (ref instanceof PDFDict && ref.lookup(name('TransformMethod')) === name(method)) found.push(ref);
  }
  return found;
}

/** A FieldMDP TransformParams or SigFieldLock dictionary as a lock; undefined when it is unreadable. */
function readLock(dict: PDFDict | undefined, lockedBy: string): FieldLock | undefined {
  const action = dict?.lookup(name('Action'));
  if (!dict || !(action instanceof PDFName)) return undefined;
  const value = action.decodeText();
  const fields: string[] = [];
  const array = dict.lookupMaybe(name('Fields'), PDFArray);
  for (let i = 0; array && i < array.size(); i++) {
    const field = text(array.lookup(i));
    if (field !== undefined) fields.push(field);
  }
  if (value === 'All' || value === 'Include' || value === 'Exclude')
    return { action: value, fields, lockedBy };
  // An action we cannot read could lock anything: treat it as locking everything.
  return { action: 'All', fields, lockedBy };
}

export function isLocked(fieldName: string, lock: FieldLock): boolean {
  if (lock.action === 'All') return true;
  const listed = lock.fields.includes(fieldName);
  return lock.action === 'Include' ? listed : !listed;
}

interface TerminalField {
  name: string;
  dict: PDFDict;
  type?: string;
}

/** Terminal fields of the AcroForm tree, with their fully qualified names and inherited /FT. */
function terminalFields(doc: PDFDocument): TerminalField[] {
  const acroForm = doc.catalog.lookupMaybe(name('AcroForm'), PDFDict);
  const roots = acroForm?.lookupMaybe(name('Fields'), PDFArray);
  const out: TerminalField[] = [];
  const seen = new Set<PDFDict>();
  const visit = (dict: PDFDict, parentName: string, parentType: string | undefined, depth: number) => {
    if (seen.has(dict) || depth > MAX_FIELD_DEPTH) return;
    seen.add(dict);
    const partial = text(dict.lookup(name('T')));
    const fullName = partial === undefined ? parentName : parentName ? `${parentName}.${partial}` : partial;
    const ft = dict.lookup(name('FT'));
    const type = ft instanceof PDFName ? ft.decodeText() : parentType;
    const kids = dict.lookupMaybe(name('Kids'), PDFArray);
    // Kids without /T are this field's widgets, not fields of their own.
    const fieldKids: PDFDict[] = [];
    for (let i = 0; kids && i < kids.size(); i++) {
      const kid = kids.lookup(i);
      if (kid instanceof PDFDict && kid.has(name('T'))) fieldKids.push(kid);
    }
    if (fieldKids.length === 0) out.push({ name: fullName, dict, type });
    for (const kid of fieldKids) visit(kid, fullName, type, depth + 1);
  };
  for (let i = 0; roots && i < roots.size(); i++) {
    const root = roots.lookup(i);
    if (root instanceof PDFDict) visit(root, '', undefined, 0);
  }
  return out;
}

function stricter(a: DocumentPermission | undefined, b: DocumentPermission): DocumentPermission {
  return a === undefined || b.p < a.p ? b : a;
}

/** Reads the certification, the FieldMDP locks and the empty signature fields of a loaded input. */
export function readModificationPermissions(doc: PDFDocument): ModificationPermissions {
  const locks: FieldLock[] = [];
  const emptySignatureFields: EmptySignatureField[] = [];
  let document: DocumentPermission | undefined;
  let certificationField: string | undefined;

  const certificationRef = doc.catalog.lookupMaybe(name('Perms'), PDFDict)?.get(name('DocMDP'));
  const certification = certificationRef ? doc.context.lookup(certificationRef) : undefined;
  if (certificationRef && !(certification instanceof PDFDict)) {
    throw new PdfError('input PDF has a /Perms /DocMDP entry that is not a signature dictionary');
  }

  for (const field of terminalFields(doc)) {
    if (field.type !== 'Sig') continue;
    const lockDict = field.dict.lookupMaybe(name('Lock'), PDFDict);
    const value = field.dict.lookup(name('V'));
    if (value === undefined || value === PDFNull) {
      emptySignatureFields.push({ name: field.name, dict: field.dict, lock: lockDict });
      continue;
    }
    if (!(value instanceof PDFDict)) {
      // A value we cannot read is still a signature: never overwritten, and its locks unknown.
      locks.push({ action: 'All', fields: [], lockedBy: field.name });
      continue;
    }
    if (value === certification) certificationField = field.name;
    // A signed field's /Lock says what its signer meant to lock; the FieldMDP SigRef is what was
    // written into the signature. Honour both, since a writer may have filled in only one.
    const fromLock = readLock(lockDict, field.name);
    if (fromLock) locks.push(fromLock);
    const lockP = permission(lockDict, `/Lock of signature field ${field.name}`);
    if (lockP) document = stricter(document, { p: lockP, source: 'field-lock', fieldName: field.name });
    for (const sigRef of sigRefs(value, 'FieldMDP')) {
      const params = sigRef.lookupMaybe(name('TransformParams'), PDFDict);
      const lock = readLock(params, field.name) ?? { action: 'All', fields: [], lockedBy: field.name };
      locks.push(lock);
      const p = permission(params, `FieldMDP of signature field ${field.name}`);
      if (p) document = stricter(document, { p, source: 'field-lock', fieldName: field.name });
    }
  }

  if (certification instanceof PDFDict) {
    // The transform is what counts; a /Perms entry whose signature lacks one is still a certification
    // (the spec requires the SigRef), read at the default level rather than ignored.
    const docMdp = sigRefs(certification, 'DocMDP')[0];
    const params = docMdp?.lookupMaybe(name('TransformParams'), PDFDict);
    const p = permission(params, 'DocMDP', DEFAULT_DOCMDP_P) ?? DEFAULT_DOCMDP_P;
    // On a tie the certification is named: its refusal message is the one operators look for.
    const cert: DocumentPermission = { p, source: 'certification', fieldName: certificationField };
    document = document && document.p < p ? document : cert;
  }
  return { document, locks, emptySignatureFields };
}

function describe(p: MdpPermission): string {
  return p === 1
    ? 'no changes allowed'
    : p === 2
      ? 'form filling and signing'
      : 'form filling, signing, annotations';
}

export interface SealTargetOptions {
  /**
   * Which empty signature field of a certified input takes the seal. Needed only when it has several
   * (the seal must not take a field meant for a person); ignored for uncertified inputs.
   */
  fieldName?: string;
}

/**
 * Where the seal goes, or a PdfError saying why the input cannot take one without breaking an earlier
 * signature. Uncertified inputs get a new field as they always did (adding a signature field after
 * approval signatures is allowed: Adobe's table, and pyHanko's SigFieldCreationRule).
 */
export function chooseSealTarget(
  perms: ModificationPermissions,
  options: SealTargetOptions = {},
): SealTarget {
  const { document } = perms;
  if (!document) return { kind: 'new-field' };
  const p = document.p;
  if (p === 1) {
    if (document.source === 'certification') {
      throw new PdfError(
        'input PDF is certified with DocMDP permission P=1 (no changes allowed): sealing it would break its certification',
      );
    }
    throw new PdfError(
      `input PDF is locked by the signature in field ${document.fieldName ?? '?'} with permission P=1 ` +
        '(no changes allowed): sealing it would break that signature',
    );
  }
  const certified = document.source === 'certification';
  const what = certified
    ? `certified with DocMDP permission P=${p} (${describe(p)})`
    : `locked by the signature in field ${document.fieldName ?? '?'} with permission P=${p} (${describe(p)})`;
  const breaks = certified ? 'its certification' : 'that signature';
  const lockers = (field: EmptySignatureField) =>
    perms.locks.filter((lock) => isLocked(field.name, lock)).map((lock) => lock.lockedBy);
  const lockedError = (fields: EmptySignatureField[]) =>
    new PdfError(
      `input PDF is ${what}, and its empty signature field(s) ${fields.map((f) => f.name).join(', ')} ` +
        `are locked by FieldMDP of the signature(s) in ${[...new Set(fields.flatMap(lockers))].join(', ')}: ` +
        `filling one would break the locking signature, adding a field would break ${breaks}`,
    );
  const empty = perms.emptySignatureFields;

  if (options.fieldName !== undefined) {
    const named = empty.find((f) => f.name === options.fieldName);
    if (!named) {
      throw new PdfError(
        `input PDF is ${what} but has no empty signature field named ${options.fieldName} ` +
          `(empty ones: ${empty.map((f) => f.name).join(', ') || 'none'})`,
      );
    }
    if (lockers(named).length > 0) throw lockedError([named]);
    return { kind: 'existing-field', field: named };
  }
  const free = empty.filter((f) => lockers(f).length === 0);
  if (free.length === 1) return { kind: 'existing-field', field: free[0]! };
  if (free.length > 1) {
    throw new PdfError(
      `input PDF is ${what} and has ${free.length} empty signature fields (${free.map((f) => f.name).join(', ')}): ` +
        'name the one the seal may take (fieldName), or the seal could take a field meant for a person',
    );
  }
  if (empty.length > 0) throw lockedError(empty);
  throw new PdfError(
    `input PDF is ${what} but has no empty signature field to seal: adding a new signature field ` +
      `would break ${breaks}`,
  );
}

/** The reference of the catalog, which a FieldMDP SigRef's /Data points at (ISO 32000-1 Table 253). */
export function catalogRef(doc: PDFDocument): PDFRef {
  const root = doc.context.trailerInfo.Root;
  if (!(root instanceof PDFRef)) throw new PdfError('input PDF trailer has no /Root reference');
  return root;
}
