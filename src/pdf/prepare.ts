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
import { buildSealAppearance, type SealAppearance } from './seal-appearance';
import {
  type AddedSignatureField,
  addSignatureField,
  BYTE_RANGE_PLACEHOLDER,
  type SignatureFieldOptions,
} from './signature-field';

export { ENCRYPTED_INPUT_MESSAGE } from './incremental-update';

export const SUBFILTER_ETSI_CADES_DETACHED = 'ETSI.CAdES.detached';
export const DEFAULT_SIGNATURE_BYTES = 8192;
const MIN_SIGNATURE_BYTES = 256;
const MAX_SIGNATURE_BYTES = 1024 * 1024;

export interface PrepareOptions {
  /** Written as the signature dictionary's /M; also what a B-B validator shows as the claimed time. */
  signingTime: Date;
  reason?: string;
  location?: string;
  /** The sealing organisation's name as /Name (validators show the certificate subject anyway). */
  name?: string;
  contactInfo?: string;
  /** Bytes reserved for the DER CMS (the placeholder holds twice as many hex digits). Default 8192. */
  signatureBytes?: number;
  /** Most bytes loading the input may inflate (object and xref streams), against decompression bombs. */
  maxInflatedBytes?: number;
  /**
   * For certified inputs with more than one empty signature field: the one the seal goes into. Not
   * needed when there is one; ignored for uncertified inputs, which always get a new field.
   */
  certifiedFieldName?: string;
  /** A visible company seal where the widget sits. Default: none, an invisible /Rect [0 0 0 0]. */
  appearance?: SealAppearance;
}

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

function checkSignatureBytes(n: number): void {
  if (!Number.isInteger(n) || n < MIN_SIGNATURE_BYTES || n > MAX_SIGNATURE_BYTES) {
    throw new PdfError(
      `signatureBytes must be an integer from ${MIN_SIGNATURE_BYTES} to ${MAX_SIGNATURE_BYTES}, got ${n}`,
    );
  }
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

export function preparePdf(inputBytes: Uint8Array, options: PrepareOptions): Promise<PreparedPdf> {
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
  if (!(options.signingTime instanceof Date) || Number.isNaN(options.signingTime.getTime())) {
    throw new PdfError('signingTime must be a valid Date');
  }
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
