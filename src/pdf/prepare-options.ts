// What preparing a seal takes and checks, shared by both paths of prepare (the fast update-only
// writer of seal-update.ts and the pdf-lib one of prepare.ts), so both refuse bad options alike.
import type { MdpPermission } from './modification-permissions';
import { PdfError } from './pdf-error';
import type { SealAppearance } from './seal-appearance';

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

/** The update alone: what a caller appends to the input (input || update is the prepared file). */
export interface PreparedSealUpdate {
  /** One incremental update carrying the (still empty) placeholder; the input is not in it. */
  update: Buffer;
  /** Relative to input || update: [0, start of /Contents hex string, end of it, rest of file]. */
  byteRange: [number, number, number, number];
  /** SHA-256 of (input || update)[0..byteRange[1]) || (input || update)[byteRange[2]..end). */
  contentDigest: Buffer;
  inputLength: number;
  signatureBytes: number;
  /** The signature field the seal went into. */
  fieldName: string;
  /** True when a certified input's own empty signature field was filled instead of adding one. */
  filledExistingField: boolean;
  /** The /P of the filled field's /Lock: once sealed, the document permits only these changes. */
  lockPermission?: MdpPermission;
  /** Which writer made the update: the lazy reader's ('fast') or pdf-lib's (see prepare.ts). */
  path: 'fast' | 'pdf-lib';
  /** Why the fast path did not take this input (only when path is 'pdf-lib'). */
  fallbackReason?: string;
}

export function checkSigningTime(signingTime: unknown): void {
  if (!(signingTime instanceof Date) || Number.isNaN(signingTime.getTime())) {
    throw new PdfError('signingTime must be a valid Date');
  }
}

export function checkSignatureBytes(n: number): void {
  if (!Number.isInteger(n) || n < MIN_SIGNATURE_BYTES || n > MAX_SIGNATURE_BYTES) {
    throw new PdfError(
      `signatureBytes must be an integer from ${MIN_SIGNATURE_BYTES} to ${MAX_SIGNATURE_BYTES}, got ${n}`,
    );
  }
}
