// Reads what a verifier needs to know about a PDF's incremental updates after its first signature: for
// each later revision, whether its update only added validation data (DSS), signatures or document
// timestamps, or changed anything else; the DSS as each revision leaves it; and the DocMDP permission of
// a certifying signature. Loads each revision's prefix with pdf-lib and compares objects, so it costs a
// parse per revision: verifiers call it only when a file has updates after a signature (or DocMDP).
import { createHash } from 'node:crypto';
import {
  decodePDFRawStream,
  ParseSpeeds,
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFName,
  PDFNumber,
  PDFObject,
  PDFRawStream,
  PDFRef,
  PDFStream,
} from 'pdf-lib';
import { indexOfAscii, isPdfWhitespace } from './bytes';
import { DEFAULT_MAX_INFLATED_BYTES, withInflateBudget } from './inflate-limit';
import { PdfError } from './pdf-error';

export interface DssSnapshot {
  certsDer: Buffer[];
  ocspsDer: Buffer[];
  crlsDer: Buffer[];
  /** /VRI keys as written (upper-case hex SHA-1 of a signature's /Contents bytes). */
  vriKeys: string[];
}

export interface RevisionChange {
  /** The update touched the DSS (or objects only it uses). */
  validationData: boolean;
  /** The update added signature fields, signature dictionaries or document timestamps. */
  signing: boolean;
  /** Anything else, one line each (empty when the update was only validation data and signing). */
  other: string[];
}

export interface PdfRevision {
  /** Offset just past this revision's %%EOF (and its end-of-line). */
  end: number;
  /** The DSS as this revision leaves it, when the catalog has one. */
  dss?: DssSnapshot;
  /** What this revision's update changed; undefined for the first revision analysed. */
  change?: RevisionChange;
}

export interface DocMdpPermission {
  /** ByteRange of the certifying signature (how the verifier finds it among the signatures). */
  byteRange: [number, number, number, number];
  /** 1 no changes, 2 form filling and signing, 3 also annotations (ISO 32000 12.8.2.2). */
  permission: 1 | 2 | 3;
}

export interface RevisionReport {
  /** Oldest first; the first is the revision that ends at `fromOffset` or the first one after it. */
  revisions: PdfRevision[];
  docMdp?: DocMdpPermission;
}

const STRUCTURAL_TYPES = new Set(['XRef', 'ObjStm']);
const CATALOG_VALIDATION_KEYS = new Set(['DSS', 'Extensions']);
const CATALOG_SIGNING_KEYS = new Set(['AcroForm']);
const ACROFORM_SIGNING_KEYS = new Set(['Fields', 'SigFlags', 'DR', 'DA']);

/** Every offset just past a %%EOF marker (and the end-of-line after it). */
export function revisionEnds(pdf: Buffer): number[] {
  const ends: number[] = [];
  for (let at = indexOfAscii(pdf, '%%EOF'); at >= 0; at = indexOfAscii(pdf, '%%EOF', at + 5)) {
    let end = at + 5;
    if (pdf[end] === 0x0d) end++;
    if (pdf[end] === 0x0a) end++;
    ends.push(end);
  }
  return ends;
}

async function load(bytes: Buffer): Promise<PDFDocument> {
  try {
    return await withInflateBudget(DEFAULT_MAX_INFLATED_BYTES, () =>
      PDFDocument.load(bytes, {
        ignoreEncryption: true,
        updateMetadata: false,
        parseSpeed: ParseSpeeds.Fastest,
        throwOnInvalidObject: false,
        warnOnInvalidObjects: false,
      }),
    );
  } catch (cause) {
    if (cause instanceof PdfError) throw cause;
    throw new PdfError(
      `revision ending at ${bytes.length} could not be parsed: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

function typeOf(obj: PDFObject | undefined): string | undefined {
  const dict = obj instanceof PDFStream ? obj.dict : obj;
  if (!(dict instanceof PDFDict)) return undefined;
  const t = dict.get(PDFName.of('Type'));
  return t instanceof PDFName ? t.decodeText() : undefined;
}

/** A comparable fingerprint of an object: streams by dictionary and raw content hash. */
function fingerprint(obj: PDFObject): string {
  if (obj instanceof PDFRawStream) {
    return `${obj.dict.toString()}#${createHash('sha256').update(obj.contents).digest('hex')}`;
  }
  return obj.toString();
}

/** Refs reachable from `obj` (not following /P, /Parent: those lead back to the page tree). */
function collectRefs(doc: PDFDocument, obj: PDFObject | undefined, into: Set<string>): void {
  if (obj === undefined) return;
  if (obj instanceof PDFRef) {
    if (into.has(obj.tag)) return;
    into.add(obj.tag);
    collectRefs(doc, doc.context.lookup(obj), into);
  } else if (obj instanceof PDFArray) {
    for (let i = 0; i < obj.size(); i++) collectRefs(doc, obj.get(i), into);
  } else if (obj instanceof PDFDict || obj instanceof PDFStream) {
    const dict = obj instanceof PDFStream ? obj.dict : obj;
    for (const [key, value] of dict.entries()) {
      const name = key.decodeText();
      if (name !== 'P' && name !== 'Parent') collectRefs(doc, value, into);
    }
  }
}

function isSignatureField(doc: PDFDocument, dict: PDFDict): boolean {
  const ft = dict.get(PDFName.of('FT'));
  if (ft instanceof PDFName && ft.decodeText() === 'Sig') return true;
  const parent = dict.lookup(PDFName.of('Parent'));
  return parent instanceof PDFDict && isSignatureField(doc, parent);
}

/** Objects that belong to signing: signature and timestamp dictionaries, signature fields, their appearances. */
function signingRefs(doc: PDFDocument): Set<string> {
  const refs = new Set<string>();
  for (const [ref, obj] of doc.context.enumerateIndirectObjects()) {
    const type = typeOf(obj);
    if (type === 'Sig' || type === 'DocTimeStamp') refs.add(ref.tag);
    else if (obj instanceof PDFDict && isSignatureField(doc, obj)) {
      refs.add(ref.tag);
      collectRefs(doc, obj.get(PDFName.of('AP')), refs);
      const v = obj.get(PDFName.of('V'));
      if (v instanceof PDFRef) refs.add(v.tag);
    }
  }
  return refs;
}

function arrayTags(arr: PDFArray): string[] {
  return arr.asArray().map((o) => (o instanceof PDFRef ? o.tag : o.toString()));
}

/** Keys whose values differ between two dictionaries. */
function changedKeys(a: PDFDict, b: PDFDict): string[] {
  const keys = new Set([...a.keys(), ...b.keys()].map((k) => k.decodeText()));
  return [...keys].filter((k) => {
    const va = a.get(PDFName.of(k));
    const vb = b.get(PDFName.of(k));
    return (va === undefined) !== (vb === undefined) || (va && vb && fingerprint(va) !== fingerprint(vb));
  });
}

function readStreams(doc: PDFDocument, dss: PDFDict, key: string): Buffer[] {
  const arr = dss.lookup(PDFName.of(key));
  if (!(arr instanceof PDFArray)) return [];
  const out: Buffer[] = [];
  for (let i = 0; i < arr.size(); i++) {
    const s = arr.lookup(i);
    if (s instanceof PDFRawStream) out.push(Buffer.from(decodePDFRawStream(s).decode()));
  }
  return out;
}

function readDss(doc: PDFDocument): DssSnapshot | undefined {
  const dss = doc.catalog.lookup(PDFName.of('DSS'));
  if (!(dss instanceof PDFDict)) return undefined;
  const vri = dss.lookup(PDFName.of('VRI'));
  return {
    certsDer: readStreams(doc, dss, 'Certs'),
    ocspsDer: readStreams(doc, dss, 'OCSPs'),
    crlsDer: readStreams(doc, dss, 'CRLs'),
    vriKeys: vri instanceof PDFDict ? vri.keys().map((k) => k.decodeText()) : [],
  };
}

/** What `after`'s update changed relative to `before`. */
function classifyUpdate(before: PDFDocument, after: PDFDocument): RevisionChange {
  const change: RevisionChange = { validationData: false, signing: false, other: [] };
  const catalogRef = after.context.trailerInfo.Root;
  const dssRefs = new Set<string>();
  collectRefs(after, after.catalog.get(PDFName.of('DSS')), dssRefs);
  const sigRefs = signingRefs(after);
  const acroForm = after.catalog.get(PDFName.of('AcroForm'));
  const acroFormTag = acroForm instanceof PDFRef ? acroForm.tag : undefined;

  for (const [ref, obj] of after.context.enumerateIndirectObjects()) {
    const old = before.context.lookup(ref);
    if (old !== undefined && fingerprint(old) === fingerprint(obj)) continue;
    const type = typeOf(obj);
    if (type && STRUCTURAL_TYPES.has(type)) continue;
    const name = `object ${ref.objectNumber} ${ref.generationNumber}${type ? ` (/Type /${type})` : ''}`;
    if (catalogRef instanceof PDFRef && ref.tag === catalogRef.tag && obj instanceof PDFDict) {
      const keys = old instanceof PDFDict ? changedKeys(old, obj) : ['(new catalog)'];
      for (const k of keys) {
        if (CATALOG_VALIDATION_KEYS.has(k)) change.validationData = true;
        else if (CATALOG_SIGNING_KEYS.has(k)) change.signing = true;
        else change.other.push(`catalog /${k} changed`);
      }
    } else if (dssRefs.has(ref.tag)) {
      change.validationData = true;
    } else if (sigRefs.has(ref.tag)) {
      change.signing = true;
    } else if (old instanceof PDFDict && obj instanceof PDFDict && ref.tag === acroFormTag) {
      const keys = changedKeys(old, obj).filter((k) => !ACROFORM_SIGNING_KEYS.has(k));
      if (keys.length) change.other.push(`AcroForm ${keys.map((k) => `/${k}`).join(' ')} changed`);
      else change.signing = true;
    } else if (old instanceof PDFDict && obj instanceof PDFDict && type === 'Page') {
      // Adding a signature widget rewrites the page with a longer /Annots; the widget itself is checked
      // as an object of its own.
      const keys = changedKeys(old, obj);
      const annotsOnly = keys.every((k) => k === 'Annots');
      const oldAnnots = old.lookup(PDFName.of('Annots'));
      const newAnnots = obj.lookup(PDFName.of('Annots'));
      const kept =
        !(oldAnnots instanceof PDFArray) ||
        (newAnnots instanceof PDFArray &&
          arrayTags(oldAnnots).every((t) => arrayTags(newAnnots).includes(t)));
      const added = newAnnots instanceof PDFArray ? arrayTags(newAnnots) : [];
      const oldTags = oldAnnots instanceof PDFArray ? arrayTags(oldAnnots) : [];
      const addedAreSignatures = added.filter((t) => !oldTags.includes(t)).every((t) => sigRefs.has(t));
      if (annotsOnly && kept && addedAreSignatures) change.signing = true;
      else change.other.push(`page ${name} changed (${keys.map((k) => `/${k}`).join(' ')})`);
    } else if (old instanceof PDFArray && obj instanceof PDFArray) {
      // An indirect /Annots or /Fields array that only grew by signature fields.
      const oldTags = arrayTags(old);
      const newTags = arrayTags(obj);
      const grewBySignatures =
        oldTags.every((t) => newTags.includes(t)) &&
        newTags.filter((t) => !oldTags.includes(t)).every((t) => sigRefs.has(t));
      if (grewBySignatures) change.signing = true;
      else change.other.push(`${name} (array) changed`);
    } else {
      change.other.push(`${name} ${old === undefined ? 'added' : 'changed'}`);
    }
  }
  return change;
}

function readDocMdp(doc: PDFDocument): DocMdpPermission | undefined {
  const perms = doc.catalog.lookup(PDFName.of('Perms'));
  if (!(perms instanceof PDFDict)) return undefined;
  const sig = perms.lookup(PDFName.of('DocMDP'));
  if (!(sig instanceof PDFDict)) return undefined;
  const range = sig.lookup(PDFName.of('ByteRange'));
  if (!(range instanceof PDFArray) || range.size() !== 4) return undefined;
  const byteRange = range.asArray().map((n) => (n instanceof PDFNumber ? n.asNumber() : NaN)) as [
    number,
    number,
    number,
    number,
  ];
  let permission: 1 | 2 | 3 = 2; // the default when /P is absent
  const refs = sig.lookup(PDFName.of('Reference'));
  if (refs instanceof PDFArray) {
    for (let i = 0; i < refs.size(); i++) {
      const r = refs.lookup(i);
      if (!(r instanceof PDFDict)) continue;
      const method = r.get(PDFName.of('TransformMethod'));
      if (!(method instanceof PDFName) || method.decodeText() !== 'DocMDP') continue;
      const params = r.lookup(PDFName.of('TransformParams'));
      const p = params instanceof PDFDict ? params.lookup(PDFName.of('P')) : undefined;
      if (p instanceof PDFNumber && [1, 2, 3].includes(p.asNumber())) permission = p.asNumber() as 1 | 2 | 3;
    }
  }
  return { byteRange, permission };
}

/**
 * Revisions from the one ending at or after `fromOffset` (normally the first signature's coverage end)
 * to the end of the file; bytes after the last %%EOF make a last revision of their own.
 */
export async function readRevisions(pdf: Buffer, fromOffset: number): Promise<RevisionReport> {
  const ends = revisionEnds(pdf).filter((e) => e >= fromOffset);
  // Trailing whitespace belongs to the last revision; anything else after the last %%EOF is no update.
  let junkAfterLastEof = false;
  const lastEof = ends[ends.length - 1];
  if (lastEof === undefined) ends.push(pdf.length);
  else if (lastEof < pdf.length) {
    if (pdf.subarray(lastEof).every(isPdfWhitespace)) ends[ends.length - 1] = pdf.length;
    else {
      junkAfterLastEof = true;
      ends.push(pdf.length);
    }
  }
  const revisions: PdfRevision[] = [];
  let previous: PDFDocument | undefined;
  for (const end of ends) {
    const doc = await load(pdf.subarray(0, end));
    const revision: PdfRevision = { end };
    const dss = readDss(doc);
    if (dss) revision.dss = dss;
    if (previous) revision.change = classifyUpdate(previous, doc);
    revisions.push(revision);
    previous = doc;
  }
  if (junkAfterLastEof) {
    const last = revisions[revisions.length - 1]!;
    last.change ??= { validationData: false, signing: false, other: [] };
    last.change.other.push(`${pdf.length - lastEof!} bytes after the last %%EOF`);
  }
  const docMdp = previous ? readDocMdp(previous) : undefined;
  return docMdp ? { revisions, docMdp } : { revisions };
}
