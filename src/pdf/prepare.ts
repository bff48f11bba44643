// Step 1 of sealing: append ONE incremental update with a signature field and an empty placeholder,
// fix the ByteRange, and hash the signed ranges. A pure function of bytes so it can run in a worker
// thread; the result is small and structured-clone safe (bytes arrive on the other side as Uint8Array).
// Inputs that cannot take a seal are refused with a PdfError naming why: empty, not a PDF, encrypted
// (incremental-update.ts), or certified (or field-locked) so that any seal would break an earlier
// signature (modification-permissions.ts).
import { createHash } from 'node:crypto';
import type { PDFDocument } from 'pdf-lib';
import { asBuffer } from './bytes';
import { fillSignatureField } from './fill-signature-field';
import { loadForUpdate, writeUpdate, type LoadedForUpdate } from './incremental-update';
import {
  chooseSealTarget,
  type MdpPermission,
  readModificationPermissions,
} from './modification-permissions';
import { PdfError } from './pdf-error';
import {
  checkSignatureBytes,
  checkSigningTime,
  DEFAULT_SIGNATURE_BYTES,
  type PreparedSealUpdate,
  type PrepareOptions,
  SUBFILTER_ETSI_CADES_DETACHED,
} from './prepare-options';
import { FastPathUnavailable, prepareSealUpdateFast, PdfStructureError } from './seal-update';
import { buildSealAppearance } from './seal-appearance';
import {
  type AddedSignatureField,
  addSignatureField,
  BYTE_RANGE_PLACEHOLDER,
  type SignatureFieldOptions,
} from './signature-field';

export { ENCRYPTED_INPUT_MESSAGE } from './incremental-update';
export {
  DEFAULT_SIGNATURE_BYTES,
  SUBFILTER_ETSI_CADES_DETACHED,
  type PreparedSealUpdate,
  type PrepareOptions,
} from './prepare-options';

/** Where the placeholder is: all that embedding a CMS needs. */
export interface PlaceholderLayout {
  /** The input followed by one incremental update carrying the (still empty) placeholder. */
  bytes: Buffer;
  /** [0, start of /Contents hex string, end of it, rest of file]. */
  byteRange: [number, number, number, number];
  /** SHA-256 of bytes[0..byteRange[1]) || bytes[byteRange[2]..end). */
  contentDigest: Buffer;
  inputLength: number;
  signatureBytes: number;
}

export interface PreparedPdf extends PlaceholderLayout {
  /** The signature field the seal went into. */
  fieldName: string;
  /** True when a certified input's own empty signature field was filled instead of adding one. */
  filledExistingField: boolean;
  /** The /P of the filled field's /Lock: once sealed, the document permits only these changes. */
  lockPermission?: MdpPermission;
}

/** What a placement step put into the document: the signature dictionary and its field. */
export interface PlacedSignature extends AddedSignatureField {
  filledExistingField: boolean;
  lockPermission?: MdpPermission;
}

/** The digest of a byte range, as the messageDigest signed attribute must carry it. */
export function digestByteRange(bytes: Buffer, byteRange: readonly [number, number, number, number]): Buffer {
  const [s1, l1, s2, l2] = byteRange;
  return createHash('sha256')
    .update(bytes.subarray(s1, s1 + l1))
    .update(bytes.subarray(s2, s2 + l2))
    .digest();
}

/** Puts the signature dictionary into the document (a new field, or an existing empty one). */
type PlaceSignature = (
  doc: PDFDocument,
  field: SignatureFieldOptions,
) => PlacedSignature | Promise<PlacedSignature>;

/** The default placement: a new field, or for a certified input its empty signature field. */
function placeSeal(doc: PDFDocument, field: SignatureFieldOptions, fieldName?: string): PlacedSignature {
  const target = chooseSealTarget(readModificationPermissions(doc), { fieldName });
  if (target.kind === 'existing-field') {
    return { ...fillSignatureField(doc, target.field, field), filledExistingField: true };
  }
  return { ...addSignatureField(doc, field), filledExistingField: false };
}

/**
 * Which path prepares an input, tried in this order:
 * - fast (seal-update.ts, the lazy reader): every input it can read, which is every well-formed PDF
 *   with a classic xref table, an xref stream (Flate, PNG predictors), a hybrid /XRefStm, object
 *   streams, linearization or earlier incremental updates, and no `appearance`, no /Perms /DocMDP
 *   and no signed field with a /Lock or a signature with a /Reference;
 * - pdf-lib (below): everything else. That is a visible `appearance` (fonts and images are embedded
 *   with pdf-lib), certified or field-locked inputs (modification-permissions.ts reads a pdf-lib
 *   document), streams with filters or predictors other than Flate/PNG where the reader needs one,
 *   objects of unexpected types, and inputs whose structure the lazy reader finds broken
 *   (PdfStructureError: bad offsets, a /Prev loop, entries not 20 bytes, a wrong /Length ...), which
 *   pdf-lib may still recover by parsing the whole file; its refusal is then the answer.
 * Refusals (empty, not a PDF, truncated, encrypted, no pages, bad options, over the inflate cap) are
 * the same PdfErrors on both paths and are never retried on the other.
 */
export async function prepareSealUpdate(
  inputBytes: Uint8Array,
  options: PrepareOptions,
): Promise<PreparedSealUpdate> {
  const prepared = await prepareEither(inputBytes, options);
  if ('update' in prepared) return prepared;
  const { bytes, ...rest } = prepared.full;
  // A copy of its own: a view would keep (and a structured clone would copy) the whole file.
  const update = Buffer.alloc(bytes.length - rest.inputLength);
  bytes.copy(update, 0, rest.inputLength);
  return { ...rest, update, path: 'pdf-lib', fallbackReason: prepared.fallbackReason };
}

/** The input followed by its seal update, from whichever path took it (see prepareSealUpdate). */
export async function preparePdf(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
  const prepared = await prepareEither(inputBytes, options);
  if (!('update' in prepared)) return prepared.full;
  const { update, path: _path, fallbackReason: _reason, ...rest } = prepared;
  return { ...rest, bytes: Buffer.concat([asBuffer(inputBytes), update]) };
}

async function prepareEither(
  inputBytes: Uint8Array,
  options: PrepareOptions,
): Promise<PreparedSealUpdate | { full: PreparedPdf; fallbackReason: string }> {
  try {
    return prepareSealUpdateFast(inputBytes, options);
  } catch (err) {
    if (!(err instanceof FastPathUnavailable || err instanceof PdfStructureError)) throw err;
    return { full: await preparePdfWithPdfLib(inputBytes, options), fallbackReason: err.message };
  }
}

/** The pdf-lib path alone (also for benchmarks and tests). Not part of the pdf part's API. */
export function preparePdfWithPdfLib(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
  return appendSignatureUpdate(inputBytes, options, async (doc, field) => {
    const appearance = options.appearance && (await buildSealAppearance(doc, options.appearance));
    return placeSeal(doc, { ...field, appearance }, options.certifiedFieldName);
  });
}

/**
 * preparePdf with the placement step supplied: test fixtures use it to write a certification
 * signature through the same checks, writer and ByteRange layout. Not part of the pdf part's API.
 */
export async function appendSignatureUpdate(
  inputBytes: Uint8Array,
  options: PrepareOptions,
  place: PlaceSignature,
): Promise<PreparedPdf> {
  checkSigningTime(options.signingTime);
  return appendPlaceholder(
    asBuffer(inputBytes),
    {
      signingTime: options.signingTime,
      signatureBytes: options.signatureBytes ?? DEFAULT_SIGNATURE_BYTES,
      subFilter: SUBFILTER_ETSI_CADES_DETACHED,
      reason: options.reason,
      name: options.name,
      location: options.location,
      contactInfo: options.contactInfo,
    },
    options.maxInflatedBytes,
    place,
  );
}

/**
 * One incremental update with a signature field whose value is `field`'s dictionary (placed by
 * `place`: a new field by default), its ByteRange filled in and the ranges hashed. Shared by
 * preparePdf and prepareDocTimestamp.
 */
export async function appendPlaceholder(
  input: Buffer,
  field: SignatureFieldOptions,
  maxInflatedBytes: number | undefined,
  place: PlaceSignature = (doc, f) => ({
    ...addSignatureField(doc, f),
    filledExistingField: false,
  }),
  /** Further changes to the same update (e.g. a catalog entry), made before the field is placed. */
  edit?: (loaded: LoadedForUpdate) => void,
): Promise<PreparedPdf> {
  const { signatureBytes } = field;
  checkSignatureBytes(signatureBytes);
  const loaded = await loadForUpdate(input, maxInflatedBytes);
  if (loaded.doc.getPageCount() === 0) {
    throw new PdfError('input PDF has no pages to attach the seal field to');
  }
  edit?.(loaded);
  const placed = await place(loaded.doc, field);
  const bytes = await writeUpdate(loaded);

  const dictAt = bytes.indexOf(placed.dictBytes, input.length);
  if (dictAt < 0) throw new PdfError('signature dictionary not found in the written update');
  const contentsAt = dictAt + placed.dictBytes.indexOf('/Contents <', 0, 'latin1') + '/Contents '.length;
  const contentsEnd = contentsAt + 2 + signatureBytes * 2;
  const byteRange: [number, number, number, number] = [
    0,
    contentsAt,
    contentsEnd,
    bytes.length - contentsEnd,
  ];

  const placeholderAt = bytes.indexOf(`/${BYTE_RANGE_PLACEHOLDER}`, dictAt, 'latin1');
  const arrayStart = bytes.lastIndexOf('[', placeholderAt, 'latin1');
  const arrayEnd = bytes.indexOf(']', placeholderAt, 'latin1') + 1;
  const filled = `[0 ${byteRange[1]} ${byteRange[2]} ${byteRange[3]}]`;
  const room = arrayEnd - arrayStart;
  if (filled.length > room) {
    throw new PdfError(`ByteRange ${filled} does not fit its ${room}-byte placeholder`);
  }
  bytes.write(filled.slice(0, -1).padEnd(room - 1, ' ') + ']', arrayStart, 'latin1');

  return {
    bytes,
    byteRange,
    contentDigest: digestByteRange(bytes, byteRange),
    inputLength: input.length,
    signatureBytes,
    fieldName: placed.fieldName,
    filledExistingField: placed.filledExistingField,
    ...(placed.lockPermission === undefined ? {} : { lockPermission: placed.lockPermission }),
  };
}
