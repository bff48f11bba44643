// The fast prepare path: one incremental update with an invisible signature field and an empty
// placeholder, written from the few objects it touches (trailer and xref data, catalog, AcroForm, the
// first page) as read by the lazy reader, without parsing the rest of the input or copying it. The
// update has the same objects and layout as the pdf-lib path's (signature-field.ts): the signature
// dictionary from createSignatureDictionary itself, a widget with /Rect [0 0 0 0] and /F print|locked,
// the page's /Annots and the AcroForm's /Fields extended, /SigFlags 3, and the catalog only when it
// changed. Existing objects are rewritten by splicing their own bytes, so what we do not change stays
// as the author wrote it. The xref section follows the input's newest one (table or stream).
//
// Inputs this path does not take (FastPathUnavailable, see prepare.ts for the fallback): a visible
// appearance; a certified input (catalog /Perms /DocMDP) or a signed field carrying a /Lock or a
// FieldMDP /Reference, which modification-permissions.ts decides on a pdf-lib document; streams with
// filters or predictors the reader lacks; objects of unexpected types where the pdf-lib path would
// throw or coerce. Broken structure is a PdfStructureError (prepare.ts lets pdf-lib try to recover).
import { createHash } from 'node:crypto';
import { PDFContext } from 'pdf-lib';
import { asBuffer } from './bytes';
import { checkInput, checkNotEmpty, ENCRYPTED_INPUT_MESSAGE, startXref } from './incremental-update';
import { DEFAULT_MAX_INFLATED_BYTES, InflateBudget } from './inflate-limit';
import {
  PdfArray,
  PdfDict,
  PdfName,
  PdfRef,
  PdfString,
  PdfStructureError,
  type PdfValue,
} from './lazy-parser';
import { FastPathUnavailable, LazyPdf, type IndirectObject } from './lazy-reader';
import { PdfError } from './pdf-error';
import {
  checkSignatureBytes,
  checkSigningTime,
  DEFAULT_SIGNATURE_BYTES,
  type PreparedSealUpdate,
  type PrepareOptions,
  SUBFILTER_ETSI_CADES_DETACHED,
} from './prepare-options';
import {
  BYTE_RANGE_PLACEHOLDER,
  createSignatureDictionary,
  SIG_FLAGS_APPEND_ONLY,
  SIG_FLAGS_SIGNATURES_EXIST,
} from './signature-field';

const ANNOT_FLAGS_PRINT_LOCKED = 4 | 128;
const MAX_TREE_DEPTH = 32; // page and field trees are shallow; deeper is a loop or an attack

interface Edit {
  at: number;
  remove: number;
  text: string;
}

/** An existing object to write again with its own bytes spliced. */
interface Rewrite {
  object: IndirectObject;
  edits: Edit[];
}

const isDict = (v: PdfValue | undefined): v is PdfDict => v instanceof PdfDict;

/** The bytes of `object` with `edits` (offsets in its buffer, none overlapping) applied. */
function spliced({ object, edits }: Rewrite): Buffer {
  const { buf, start, end } = object.raw;
  const parts: Buffer[] = [];
  let at = start;
  for (const edit of [...edits].sort((a, b) => a.at - b.at)) {
    parts.push(buf.subarray(at, edit.at), Buffer.from(edit.text, 'latin1'));
    at = edit.at + edit.remove;
  }
  parts.push(buf.subarray(at, end));
  return Buffer.concat(parts);
}

/** Appends `item` to an array in place (before its ']'). */
const appendTo = (buf: Buffer, array: PdfArray, item: string): Edit => ({
  at: array.end - 1,
  remove: 0,
  text: isWhitespace(buf[array.end - 2]) ? `${item} ` : ` ${item} `,
});
const isWhitespace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** Adds `/key value` to a dictionary (before its '>>'; a name starts with a delimiter, so no space is needed). */
const addEntry = (dict: PdfDict, key: string, value: string): Edit => ({
  at: dict.end - 2,
  remove: 0,
  text: `/${key} ${value}\n`,
});

/** Collects the field names and whether a signed field needs modification-permissions.ts. */
function readFields(pdf: LazyPdf, fields: PdfArray): Set<string> {
  const taken = new Set<string>();
  const seen = new Set<number>();
  const resolveField = (v: PdfValue): PdfDict | undefined => {
    if (v instanceof PdfRef) {
      if (seen.has(v.num)) return undefined;
      seen.add(v.num);
    }
    const dict = pdf.lookup(v);
    return isDict(dict) ? dict : undefined;
  };
  const visit = (dict: PdfDict, inheritedType: string | undefined, depth: number): void => {
    if (depth > MAX_TREE_DEPTH) return; // as modification-permissions.ts: not a field tree
    const ft = pdf.lookup(dict.get('FT'));
    const type = ft instanceof PdfName ? ft.name : inheritedType;
    const kids = pdf.lookup(dict.get('Kids'));
    const fieldKids: PdfDict[] = [];
    if (kids instanceof PdfArray) {
      for (const item of kids.items) {
        const kid = resolveField(item);
        if (kid?.entries.has('T')) fieldKids.push(kid);
      }
    }
    if (fieldKids.length === 0 && type === 'Sig') {
      const value = pdf.lookup(dict.get('V'));
      if (value !== undefined && value !== null) {
        if (dict.entries.has('Lock')) throw new FastPathUnavailable('a signed field with a /Lock');
        if (isDict(value) && value.entries.has('Reference')) {
          throw new FastPathUnavailable('a signature with a /Reference (DocMDP or FieldMDP)');
        }
      }
    }
    for (const kid of fieldKids) visit(kid, type, depth + 1);
  };
  for (const item of fields.items) {
    const field = resolveField(item);
    if (!field) continue;
    // Only top-level /T, as signature-field.ts names fields: the same "SignatureN" on both paths.
    const t = pdf.lookup(field.get('T'));
    if (t instanceof PdfString) taken.add(t.text());
    visit(field, undefined, 0);
  }
  return taken;
}

/** The first leaf of the page tree, as pdf-lib's getPage(0) finds it. */
function firstPage(pdf: LazyPdf, pages: PdfValue | undefined): IndirectObject {
  const seen = new Set<number>();
  const visit = (node: PdfValue | undefined, depth: number): IndirectObject | undefined => {
    if (!(node instanceof PdfRef))
      throw new FastPathUnavailable('a page tree node that is not an indirect object');
    if (seen.has(node.num) || depth > MAX_TREE_DEPTH) {
      // A refusal, not a fallback: pdf-lib's page walk recurses until the stack overflows.
      throw new PdfError(`input PDF has a loop in its page tree at object ${node.num}`);
    }
    seen.add(node.num);
    const object = pdf.resolve(node);
    const dict = object?.value;
    if (!object || !isDict(dict))
      throw new PdfStructureError(`input PDF has page tree node ${node.num} that is not a dictionary`);
    const type = pdf.lookup(dict.get('Type'));
    const kids = pdf.lookup(dict.get('Kids'));
    if (type instanceof PdfName && type.name === 'Page') return object;
    if (!(kids instanceof PdfArray)) {
      throw new PdfStructureError(
        `input PDF has page tree node ${node.num} that is neither /Page nor has /Kids`,
      );
    }
    for (const kid of kids.items) {
      const leaf = visit(kid, depth + 1);
      if (leaf) return leaf;
    }
    return undefined;
  };
  const page = visit(pages, 0);
  if (!page) throw new PdfError('input PDF has no pages to attach the seal field to');
  return page;
}

/** Writes parts and remembers where each object starts. */
class UpdateWriter {
  private readonly parts: Buffer[] = [];
  length = 0;
  readonly offsets = new Map<number, { gen: number; at: number }>();

  constructor(private readonly base: number) {}

  add(bytes: Buffer | string): void {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    this.parts.push(b);
    this.length += b.length;
  }

  object(num: number, gen: number, body: Buffer | string): number {
    this.offsets.set(num, { gen, at: this.base + this.length });
    this.add(`${num} ${gen} obj\n`);
    const bodyAt = this.length;
    this.add(body);
    this.add('\nendobj\n');
    return bodyAt;
  }

  /** One buffer of its own (not from Buffer's shared pool, which a structured clone would copy whole). */
  finish(): Buffer {
    const out = Buffer.alloc(this.length);
    let at = 0;
    for (const part of this.parts) at += part.copy(out, at);
    return out;
  }
}

/** Sorted (num, gen, offset) rows, and the /Index-style runs of consecutive numbers. */
function runs(rows: { num: number }[]): { first: number; count: number }[] {
  const out: { first: number; count: number }[] = [];
  for (const { num } of rows) {
    const last = out[out.length - 1];
    if (last && last.first + last.count === num) last.count++;
    else out.push({ first: num, count: 1 });
  }
  return out;
}

function rawText(pdf: LazyPdf, trailer: PdfDict, key: string): string | undefined {
  const entry = trailer.entries.get(key);
  return entry && pdf.input.toString('latin1', entry.valueStart, entry.valueEnd);
}

/**
 * The fast path: the update alone, or FastPathUnavailable / PdfStructureError when it cannot take the
 * input (prepare.ts falls back), or the same PdfError refusals as the pdf-lib path. Synchronous.
 */
export function prepareSealUpdateFast(inputBytes: Uint8Array, options: PrepareOptions): PreparedSealUpdate {
  checkSigningTime(options.signingTime);
  const signatureBytes = options.signatureBytes ?? DEFAULT_SIGNATURE_BYTES;
  checkSignatureBytes(signatureBytes);
  if (options.appearance)
    throw new FastPathUnavailable('a visible appearance (fonts and images via pdf-lib)');
  const input = asBuffer(inputBytes);
  checkNotEmpty(input);
  checkInput(input);
  const xrefAt = startXref(input);
  const budget = new InflateBudget(options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES);
  const pdf = new LazyPdf(input, xrefAt, budget, (trailer) => {
    if (trailer.entries.has('Encrypt')) throw new PdfError(ENCRYPTED_INPUT_MESSAGE);
  });
  const { trailer } = pdf;

  const rootRef = trailer.get('Root');
  if (!(rootRef instanceof PdfRef)) throw new PdfStructureError('input PDF trailer has no /Root reference');
  const catalog = pdf.resolve(rootRef);
  if (!catalog || !isDict(catalog.value))
    throw new PdfStructureError(`input PDF has a /Root ${rootRef} that is not a dictionary`);
  const catalogDict = catalog.value;
  const size = trailer.get('Size');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) {
    throw new PdfStructureError('input PDF trailer has no readable /Size');
  }
  const perms = pdf.lookup(catalogDict.get('Perms'));
  if (perms !== undefined && (!isDict(perms) || perms.entries.has('DocMDP'))) {
    throw new FastPathUnavailable('a certified input (/Perms /DocMDP)');
  }

  const page = firstPage(pdf, catalogDict.get('Pages'));
  const rewrites = new Map<number, Rewrite>();
  const edit = (object: IndirectObject, e: Edit) => {
    if (object.num >= size)
      throw new PdfStructureError(`input PDF has object ${object.num} at or past its /Size ${size}`);
    const r = rewrites.get(object.num) ?? { object, edits: [] };
    if (r.object !== object) throw new FastPathUnavailable(`object ${object.num} reached in two ways`);
    r.edits.push(e);
    rewrites.set(object.num, r);
  };

  // New objects, numbered from /Size in pdf-lib's order: signature, AcroForm (if new), appearance, widget.
  let next = size;
  const sigNum = next++;
  const acroFormValue = catalogDict.get('AcroForm');
  const newAcroForm = acroFormValue === undefined ? next++ : undefined;
  const apNum = next++;
  const widgetNum = next++;
  const widgetRef = `${widgetNum} 0 R`;
  // pdf-lib numbers from the objects it parsed; we trust /Size, so make sure it is past them all.
  for (let num = size; num < next + 1; num++) {
    if (pdf.inUse(num))
      throw new PdfStructureError(`input PDF trailer /Size ${size} is not past object ${num}`);
  }

  // The AcroForm: new, or its /Fields extended and /SigFlags set (in the catalog when it is direct).
  let taken = new Set<string>();
  if (newAcroForm !== undefined) {
    edit(catalog, addEntry(catalogDict, 'AcroForm', `${newAcroForm} 0 R`));
  } else {
    let holder = catalog;
    let acroForm: PdfValue | undefined = acroFormValue;
    if (acroFormValue instanceof PdfRef) {
      const resolved = pdf.resolve(acroFormValue);
      if (!resolved) throw new FastPathUnavailable('an /AcroForm reference to a missing object');
      holder = resolved;
      acroForm = resolved.value;
    }
    if (!isDict(acroForm)) throw new FastPathUnavailable('an /AcroForm that is not a dictionary');
    const fieldsValue = acroForm.get('Fields');
    if (fieldsValue === undefined) {
      edit(holder, addEntry(acroForm, 'Fields', `[ ${widgetRef} ]`));
    } else if (fieldsValue instanceof PdfArray) {
      taken = readFields(pdf, fieldsValue);
      edit(holder, appendTo(holder.raw.buf, fieldsValue, widgetRef));
    } else if (fieldsValue instanceof PdfRef) {
      const fields = pdf.resolve(fieldsValue);
      if (!fields || !(fields.value instanceof PdfArray))
        throw new FastPathUnavailable('/Fields that is not an array');
      taken = readFields(pdf, fields.value);
      edit(fields, appendTo(fields.raw.buf, fields.value, widgetRef));
    } else {
      throw new FastPathUnavailable('/Fields that is not an array');
    }
    const sigFlagsEntry = acroForm.entries.get('SigFlags');
    const sigFlags = pdf.lookup(sigFlagsEntry?.value);
    if (sigFlagsEntry === undefined) {
      edit(
        holder,
        addEntry(acroForm, 'SigFlags', String(SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY)),
      );
    } else if (typeof sigFlags === 'number' && Number.isSafeInteger(sigFlags)) {
      const value = String(sigFlags | SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY);
      edit(holder, {
        at: sigFlagsEntry.valueStart,
        remove: sigFlagsEntry.valueEnd - sigFlagsEntry.valueStart,
        text: value,
      });
    } else {
      throw new FastPathUnavailable('/SigFlags that is not an integer');
    }
  }
  let n = 1;
  while (taken.has(`Signature${n}`)) n++;
  const fieldName = `Signature${n}`;

  // The page's /Annots: a direct array extended in the page, an indirect one as its own object.
  const pageDict = page.value as PdfDict;
  const annots = pageDict.get('Annots');
  if (annots === undefined) edit(page, addEntry(pageDict, 'Annots', `[ ${widgetRef} ]`));
  else if (annots instanceof PdfArray) edit(page, appendTo(page.raw.buf, annots, widgetRef));
  else if (annots instanceof PdfRef) {
    const array = pdf.resolve(annots);
    if (!array || !(array.value instanceof PdfArray))
      throw new FastPathUnavailable('/Annots that is not an array');
    edit(array, appendTo(array.raw.buf, array.value, widgetRef));
  } else throw new FastPathUnavailable('/Annots that is not an array');

  // The update itself: pdf-lib starts it on a fresh line too.
  const out = new UpdateWriter(input.length);
  out.add('\n');
  for (const [num, rewrite] of [...rewrites].sort((a, b) => a[0] - b[0])) {
    out.object(num, rewrite.object.gen, spliced(rewrite));
  }
  const { dictBytes } = createSignatureDictionary(PDFContext.create(), {
    signingTime: options.signingTime,
    signatureBytes,
    subFilter: SUBFILTER_ETSI_CADES_DETACHED,
    reason: options.reason,
    name: options.name,
    location: options.location,
    contactInfo: options.contactInfo,
  });
  const dictAt = out.object(sigNum, 0, dictBytes);
  if (newAcroForm !== undefined) {
    out.object(
      newAcroForm,
      0,
      `<<\n/Fields [ ${widgetRef} ]\n/SigFlags ${SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY}\n>>`,
    );
  }
  // Invisible, with an (empty) appearance stream all the same, as PDF/A insists.
  out.object(
    apNum,
    0,
    '<<\n/Type /XObject\n/Subtype /Form\n/BBox [ 0 0 0 0 ]\n/Resources <<\n>>\n/Length 0\n>>\nstream\n\nendstream',
  );
  out.object(
    widgetNum,
    0,
    `<<\n/Type /Annot\n/Subtype /Widget\n/FT /Sig\n/Rect [ 0 0 0 0 ]\n/V ${sigNum} 0 R\n/T (${fieldName})\n` +
      `/F ${ANNOT_FLAGS_PRINT_LOCKED}\n/P ${page.num} ${page.gen} R\n/AP <<\n/N ${apNum} 0 R\n>>\n>>`,
  );

  const kept = ['Root', 'Info', 'ID']
    .map((key) => [key, rawText(pdf, trailer, key)] as const)
    .filter((e): e is readonly [string, string] => e[1] !== undefined)
    .map(([key, value]) => `/${key} ${value}\n`)
    .join('');
  if (pdf.newest.kind === 'table') {
    const rows = [...out.offsets]
      .map(([num, { gen, at }]) => ({ num, gen, at }))
      .sort((a, b) => a.num - b.num);
    const xrefAtOut = input.length + out.length;
    let table = 'xref\n0 1\n0000000000 65535 f \n';
    let i = 0;
    for (const run of runs(rows)) {
      table += `${run.first} ${run.count}\n`;
      for (let k = 0; k < run.count; k++, i++) {
        const row = rows[i]!;
        table += `${String(row.at).padStart(10, '0')} ${String(row.gen).padStart(5, '0')} n \n`;
      }
    }
    out.add(
      `${table}trailer\n<<\n/Size ${Math.max(size, next)}\n${kept}/Prev ${xrefAt}\n>>\nstartxref\n${xrefAtOut}\n%%EOF\n`,
    );
  } else {
    const xrefNum = next++;
    const xrefStreamAt = input.length + out.length;
    const rows = [
      { num: 0, type: 0, field2: 0, gen: 65535 },
      ...[...out.offsets].map(([num, { gen, at }]) => ({ num, type: 1, field2: at, gen })),
      { num: xrefNum, type: 1, field2: xrefStreamAt, gen: 0 },
    ].sort((a, b) => a.num - b.num);
    let width = 1;
    while (2 ** (8 * width) <= xrefStreamAt) width++;
    const data = Buffer.alloc(rows.length * (3 + width));
    rows.forEach((row, r) => {
      const at = r * (3 + width);
      data[at] = row.type;
      data.writeUIntBE(row.field2, at + 1, width);
      data.writeUInt16BE(row.gen, at + 1 + width);
    });
    const index = runs(rows)
      .map((run) => `${run.first} ${run.count}`)
      .join(' ');
    out.add(
      `${xrefNum} 0 obj\n<<\n/Type /XRef\n/Size ${next}\n/W [ 1 ${width} 2 ]\n/Index [ ${index} ]\n${kept}` +
        `/Prev ${xrefAt}\n/Length ${data.length}\n>>\nstream\n`,
    );
    out.add(data);
    out.add(`\nendstream\nendobj\nstartxref\n${xrefStreamAt}\n%%EOF\n`);
  }

  const update = out.finish();
  const contentsAt = dictAt + dictBytes.indexOf('/Contents <', 0, 'latin1') + '/Contents '.length;
  const contentsEnd = contentsAt + 2 + signatureBytes * 2;
  const total = input.length + update.length;
  const byteRange: [number, number, number, number] = [
    0,
    input.length + contentsAt,
    input.length + contentsEnd,
    total - input.length - contentsEnd,
  ];
  const placeholderAt = update.indexOf(`/${BYTE_RANGE_PLACEHOLDER}`, dictAt, 'latin1');
  const arrayStart = update.lastIndexOf('[', placeholderAt, 'latin1');
  const arrayEnd = update.indexOf(']', placeholderAt, 'latin1') + 1;
  const filled = `[0 ${byteRange[1]} ${byteRange[2]} ${byteRange[3]}]`;
  const room = arrayEnd - arrayStart;
  if (filled.length > room)
    throw new PdfError(`ByteRange ${filled} does not fit its ${room}-byte placeholder`);
  update.write(filled.slice(0, -1).padEnd(room - 1, ' ') + ']', arrayStart, 'latin1');

  const contentDigest = createHash('sha256')
    .update(input)
    .update(update.subarray(0, contentsAt))
    .update(update.subarray(contentsEnd))
    .digest();
  return {
    update,
    byteRange,
    contentDigest,
    inputLength: input.length,
    signatureBytes,
    fieldName,
    filledExistingField: false,
    path: 'fast',
  };
}

export { FastPathUnavailable, PdfStructureError };
