// B-LTA, PDF side: one more incremental update with a document timestamp field (ISO 32000-2,
// ETSI EN 319 142-1): /Type /DocTimeStamp, /SubFilter /ETSI.RFC3161, an empty /Contents and a
// ByteRange over the whole file, DSS included. No /M: the time is the token's genTime. The caller asks a
// TSA for a token whose messageImprint is contentDigest and puts it in with embedCms.
import { asBuffer } from './bytes';
import { ensureEsicExtension } from './esic-extension';
import { appendPlaceholder, type PreparedPdf } from './prepare';

export const SUBFILTER_ETSI_RFC3161 = 'ETSI.RFC3161';

export interface DocTimestampOptions {
  /** Bytes reserved for the DER TimeStampToken (a ContentInfo); the TSA's chain must fit as well. */
  signatureBytes: number;
  /** Most bytes loading the input may inflate (object and xref streams), against decompression bombs. */
  maxInflatedBytes?: number;
}

/**
 * Appends a document timestamp placeholder to `pdf` (sealed, with or without a DSS). The result has
 * the same shape as preparePdf's: contentDigest is the SHA-256 imprint to request a timestamp for.
 */
export async function prepareDocTimestamp(
  pdf: Uint8Array,
  options: DocTimestampOptions,
): Promise<PreparedPdf> {
  const input = asBuffer(pdf);
  return appendPlaceholder(
    input,
    { type: 'DocTimeStamp', subFilter: SUBFILTER_ETSI_RFC3161, signatureBytes: options.signatureBytes },
    options.maxInflatedBytes,
    undefined,
    ({ doc }) => ensureEsicExtension(doc, input),
  );
}
