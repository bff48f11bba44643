// B-LT, PDF side: the Document Security Store (ISO 32000-2 Tables 261-262, ETSI EN 319 142-1), written
// as one further incremental update. The DER of certificates, OCSP responses and CRLs is opaque here
// (pades fetches and checks it); this module only stores it as streams and indexes it per signature in
// VRI dictionaries. Renewal appends to an existing DSS: existing streams are referenced again, never
// rewritten, and data already present (same bytes) is not stored twice.
import { createHash } from 'node:crypto';
import {
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFHexString,
  PDFName,
  PDFObject,
  PDFRawStream,
  PDFRef,
  PDFString,
} from 'pdf-lib';
import { asBuffer } from './bytes';
import { ensureEsicExtension } from './esic-extension';
import { loadForUpdate, writeUpdate } from './incremental-update';
import { decodeStreamInBudget, DEFAULT_MAX_INFLATED_BYTES, withInflateBudget } from './inflate-limit';
import { PdfError } from './pdf-error';

export interface DssVriEntry {
  certs?: Buffer[];
  ocsps?: Buffer[];
  crls?: Buffer[];
  /** Written as /TU (when the VRI data was gathered); replaces an existing /TU of the same entry. */
  tu?: Date;
}

export interface DssContent {
  certs: Buffer[];
  ocsps: Buffer[];
  crls: Buffer[];
  /** Keyed by vriKey() of the signature the data validates; its items join the top-level arrays too. */
  vri?: Map<string, DssVriEntry>;
}

export interface DssOptions {
  /** Most bytes loading the input and decoding its DSS streams may inflate. Default 16 MiB. */
  maxInflatedBytes?: number;
}

export interface DssSummary {
  certs: Buffer[];
  ocsps: Buffer[];
  crls: Buffer[];
  vriKeys: string[];
  /** Each VRI entry's data, resolved to bytes. */
  vri: Map<string, DssVriEntry>;
}

type Kind = 'certs' | 'ocsps' | 'crls';
const KINDS: readonly Kind[] = ['certs', 'ocsps', 'crls'];
/** The DSS array of each kind, and the VRI array that points into it. */
const DSS_KEY: Record<Kind, PDFName> = {
  certs: PDFName.of('Certs'),
  ocsps: PDFName.of('OCSPs'),
  crls: PDFName.of('CRLs'),
};
const VRI_KEY: Record<Kind, PDFName> = {
  certs: PDFName.of('Cert'),
  ocsps: PDFName.of('OCSP'),
  crls: PDFName.of('CRL'),
};
const DSS = PDFName.of('DSS');
const VRI = PDFName.of('VRI');
const TU = PDFName.of('TU');
const VRI_KEY_FORMAT = /^[0-9A-F]{40}$/;

/**
 * The VRI key of a signature (ETSI EN 319 142-1 5.4.2.2, ISO 32000-2 Table 262): the upper-case hex
 * SHA-1 of the signature's /Contents value, i.e. the whole decoded hex string INCLUDING the zero
 * padding after the DER CMS (EmbeddedSignature.contents, not .cmsDer). The standard hashes the
 * bytes of the Contents string, not a re-encoded CMS; the two validators that read VRIs agree on the
 * padding: pyHanko's sig_content_identifier is documented as taking the contents "including any
 * padding", and EU DSS hashes PDFBox's getContents (its VRI test notes the trimmed CMS gives another
 * key). For a document timestamp it is the same over the token's /Contents.
 */
export function vriKey(signatureContents: Uint8Array): string {
  return createHash('sha1').update(signatureContents).digest('hex').toUpperCase();
}

/** A stable map key for DER bytes (a digest, so the map does not hold every byte twice as strings). */
function bytesKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}

/**
 * The bytes of a DSS entry: a reference to a stream, decoded under the inflate budget. `cache` keeps a
 * stream that several arrays reference (DSS and VRI) from being decoded, and counted, twice.
 */
function streamBytes(
  doc: PDFDocument,
  entry: PDFObject | undefined,
  where: string,
  cache: Map<PDFObject, Buffer>,
): Buffer {
  const stream = entry instanceof PDFRef ? doc.context.lookup(entry) : entry;
  if (!(stream instanceof PDFRawStream)) {
    throw new PdfError(`${where} is not a stream (${stream?.constructor.name ?? 'missing'})`);
  }
  const cached = cache.get(stream);
  if (cached) return cached;
  try {
    const bytes = asBuffer(decodeStreamInBudget(stream));
    cache.set(stream, bytes);
    return bytes;
  } catch (cause) {
    if (cause instanceof PdfError) throw cause;
    throw new PdfError(`${where} could not be decoded: ${(cause as Error).message}`, { cause });
  }
}

function arrayOf(dict: PDFDict | undefined, key: PDFName, where: string): PDFArray | undefined {
  const value = dict?.lookup(key);
  if (value === undefined) return undefined;
  if (!(value instanceof PDFArray)) throw new PdfError(`${where}${key.asString()} is not an array`);
  return value;
}

function dssOf(doc: PDFDocument): PDFDict | undefined {
  const dss = doc.catalog.lookup(DSS);
  if (dss === undefined) return undefined;
  if (!(dss instanceof PDFDict)) throw new PdfError('catalog /DSS is not a dictionary');
  return dss;
}

function vriDictOf(dss: PDFDict | undefined): PDFDict | undefined {
  const vri = dss?.lookup(VRI);
  if (vri === undefined) return undefined;
  if (!(vri instanceof PDFDict)) throw new PdfError('/DSS /VRI is not a dictionary');
  return vri;
}

function checkContent(content: DssContent): void {
  for (const kind of KINDS) {
    if (!Array.isArray(content[kind])) throw new PdfError(`DSS content ${kind} must be an array of DER`);
  }
  for (const [key, entry] of content.vri ?? []) {
    if (!VRI_KEY_FORMAT.test(key)) {
      throw new PdfError(`VRI key ${JSON.stringify(key)} is not 40 upper-case hex digits (see vriKey)`);
    }
    if (entry.tu !== undefined && Number.isNaN(entry.tu.getTime())) {
      throw new PdfError(`VRI ${key}: tu is not a valid Date`);
    }
  }
  const all = [
    ...KINDS.flatMap((k) => content[k]),
    ...[...(content.vri?.values() ?? [])].flatMap((e) => KINDS.flatMap((k) => e[k] ?? [])),
  ];
  if (all.some((b) => b.length === 0)) throw new PdfError('DSS content holds an empty DER item');
}

/** The references already in `array`, by object number, so a VRI array gains no duplicate. */
function refNumbers(array: PDFArray): Set<number> {
  const numbers = new Set<number>();
  for (let i = 0; i < array.size(); i++) {
    const ref = array.get(i);
    if (ref instanceof PDFRef) numbers.add(ref.objectNumber);
  }
  return numbers;
}

/**
 * Appends one incremental update that adds `content` to the catalog's /DSS (created if absent). Existing
 * entries stay as they are; only items whose bytes are new become new streams (Flate-compressed). VRI
 * entries are keyed by vriKey(); an existing entry gains the references it lacks. Returns the input
 * itself, unchanged, when nothing in `content` is new. The input is always a byte prefix of the result.
 */
export async function appendDss(
  pdf: Uint8Array,
  content: DssContent,
  options: DssOptions = {},
): Promise<Buffer> {
  const input = asBuffer(pdf);
  checkContent(content);
  const maxInflatedBytes = options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES;
  const loaded = await loadForUpdate(input, maxInflatedBytes);
  const { doc } = loaded;
  const { context } = doc;

  const existingDss = dssOf(doc);
  const dss = existingDss ?? context.obj({});
  // Registered up front so that pdf-lib ties later edits to it directly instead of searching every
  // object for a container; harmless when nothing changes, as the document is then discarded.
  if (!existingDss) doc.catalog.set(DSS, context.register(dss));
  let changed = false;

  // Every stream already in the DSS, by its bytes: renewal points at them instead of copying.
  const known: Record<Kind, Map<string, PDFRef>> = { certs: new Map(), ocsps: new Map(), crls: new Map() };
  await withInflateBudget(maxInflatedBytes, async () => {
    for (const kind of KINDS) {
      const array = arrayOf(existingDss, DSS_KEY[kind], '/DSS ');
      for (let i = 0; i < (array?.size() ?? 0); i++) {
        const ref = array!.get(i);
        const where = `/DSS ${DSS_KEY[kind].asString()} [${i}]`;
        if (!(ref instanceof PDFRef)) throw new PdfError(`${where} is not a reference to a stream`);
        known[kind].set(bytesKey(streamBytes(doc, ref, where, new Map())), ref);
      }
    }
  });

  const refFor = (kind: Kind, der: Buffer): PDFRef => {
    const key = bytesKey(der);
    const found = known[kind].get(key);
    if (found) return found;
    const ref = context.register(context.flateStream(der));
    let array = arrayOf(dss, DSS_KEY[kind], '/DSS ');
    if (!array) {
      array = context.obj([]);
      dss.set(DSS_KEY[kind], array);
    }
    array.push(ref);
    known[kind].set(key, ref);
    changed = true;
    return ref;
  };

  for (const kind of KINDS) for (const der of content[kind]) refFor(kind, der);

  if (content.vri && content.vri.size > 0) {
    let vriDict = vriDictOf(dss);
    if (!vriDict) {
      vriDict = context.obj({});
      dss.set(VRI, vriDict);
    }
    for (const [key, entry] of content.vri) {
      const name = PDFName.of(key);
      const existing = vriDict.lookup(name);
      if (existing !== undefined && !(existing instanceof PDFDict)) {
        throw new PdfError(`/DSS /VRI /${key} is not a dictionary`);
      }
      const vri = existing ?? context.obj({ Type: 'VRI' });
      // Indirect, as pyHanko writes them: a later renewal rewrites one small VRI, not all of them.
      if (!existing) vriDict.set(name, context.register(vri));
      for (const kind of KINDS) {
        const items = entry[kind] ?? [];
        if (items.length === 0) continue;
        let array = arrayOf(vri, VRI_KEY[kind], `/VRI /${key} `);
        if (!array) {
          array = context.obj([]);
          vri.set(VRI_KEY[kind], array);
          changed = true;
        }
        const present = refNumbers(array);
        for (const der of items) {
          const ref = refFor(kind, der);
          if (present.has(ref.objectNumber)) continue;
          array.push(ref);
          present.add(ref.objectNumber);
          changed = true;
        }
      }
      if (entry.tu !== undefined) {
        const tu = PDFString.fromDate(entry.tu);
        const before = vri.lookup(TU);
        if (!(before instanceof PDFString) || before.asString() !== tu.asString()) {
          vri.set(TU, tu);
          changed = true;
        }
      }
      if (!existing) changed = true;
    }
  }

  if (!changed) return input;
  ensureEsicExtension(doc, input);
  return writeUpdate(loaded);
}

/** What the newest revision's /DSS holds (empty lists when there is none), every stream decoded. */
export async function readDss(pdf: Uint8Array, options: DssOptions = {}): Promise<DssSummary> {
  const input = asBuffer(pdf);
  const maxInflatedBytes = options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES;
  const { doc } = await loadForUpdate(input, maxInflatedBytes);
  const summary: DssSummary = { certs: [], ocsps: [], crls: [], vriKeys: [], vri: new Map() };
  const dss = dssOf(doc);
  if (!dss) return summary;
  const cache = new Map<PDFObject, Buffer>();
  await withInflateBudget(maxInflatedBytes, async () => {
    for (const kind of KINDS) {
      const array = arrayOf(dss, DSS_KEY[kind], '/DSS ');
      for (let i = 0; i < (array?.size() ?? 0); i++) {
        summary[kind].push(streamBytes(doc, array!.get(i), `/DSS ${DSS_KEY[kind].asString()} [${i}]`, cache));
      }
    }
    const vriDict = vriDictOf(dss);
    for (const [name, value] of vriDict?.entries() ?? []) {
      const key = name.decodeText();
      const vri = value instanceof PDFRef ? doc.context.lookup(value) : value;
      if (!(vri instanceof PDFDict)) throw new PdfError(`/DSS /VRI /${key} is not a dictionary`);
      const entry: DssVriEntry = {};
      for (const kind of KINDS) {
        const array = arrayOf(vri, VRI_KEY[kind], `/VRI /${key} `);
        if (!array) continue;
        entry[kind] = [];
        for (let i = 0; i < array.size(); i++) {
          entry[kind].push(
            streamBytes(doc, array.get(i), `/VRI /${key} ${VRI_KEY[kind].asString()} [${i}]`, cache),
          );
        }
      }
      const tu = vri.lookup(TU);
      if (tu instanceof PDFString || tu instanceof PDFHexString) entry.tu = tu.decodeDate();
      summary.vriKeys.push(key);
      summary.vri.set(key, entry);
    }
  });
  return summary;
}
