// Step 3 of sealing, PDF side: write a DER CMS into the placeholder that preparePdf reserved. Refuses a
// CMS that does not fit (never truncates) and a placeholder that is not the empty one prepare wrote.
// Not @signpdf/signpdf: its sign() fixes the ByteRange and hands the bytes to a signer in one call, so
// the digest cannot be taken in a prepare step (thread pool) and the CMS filled in after a remote batch.
import { asBuffer } from './bytes';
import { PdfError } from './pdf-error';
import type { PlaceholderLayout, PreparedSealUpdate } from './prepare';

let zeros = Buffer.alloc(0);

/** A run of ASCII '0' at least `n` long, kept to compare placeholders with memcmp speed. */
function asciiZeros(n: number): Buffer {
  if (zeros.length < n) zeros = Buffer.alloc(n, '0', 'latin1');
  return zeros;
}

/** Needs only the placeholder's layout, so a prepared value rebuilt from a job's data will do. */
export function embedCms(
  prepared: Pick<PlaceholderLayout, 'bytes' | 'byteRange' | 'signatureBytes'>,
  cmsDer: Uint8Array,
): Buffer {
  const source = asBuffer(prepared.bytes);
  const [, contentsAt, contentsEnd] = prepared.byteRange;
  const room = (contentsEnd - contentsAt - 2) / 2;
  if (room !== prepared.signatureBytes) {
    throw new PdfError(
      `prepared PDF is inconsistent: ByteRange gap holds ${room} bytes, signatureBytes says ${prepared.signatureBytes}`,
    );
  }
  if (cmsDer.length === 0) throw new PdfError('CMS to embed is empty');
  if (cmsDer.length > room) {
    throw new PdfError(
      `CMS of ${cmsDer.length} bytes does not fit the ${room}-byte placeholder; prepare with a larger signatureBytes`,
    );
  }
  if (source[contentsAt] !== 0x3c || source[contentsEnd - 1] !== 0x3e) {
    throw new PdfError(`prepared PDF has no /Contents hex string at offsets ${contentsAt}..${contentsEnd}`);
  }
  // Only a still-empty placeholder may be filled: a prepared value must not be sealed twice.
  const hexLength = room * 2;
  if (source.compare(asciiZeros(hexLength), 0, hexLength, contentsAt + 1, contentsEnd - 1) !== 0) {
    throw new PdfError(`placeholder at offset ${contentsAt} is not empty (already sealed?)`);
  }

  const out = Buffer.from(source);
  out.write(asBuffer(cmsDer).toString('hex'), contentsAt + 1, 'latin1');
  return out;
}

/**
 * The update-only form: the CMS written into a prepared update (from prepareSealUpdate), the input
 * never touched. input || result is the sealed file, as embedCms would have written it.
 */
export function embedCmsInUpdate(
  prepared: Pick<PreparedSealUpdate, 'update' | 'byteRange' | 'inputLength' | 'signatureBytes'>,
  cmsDer: Uint8Array,
): Buffer {
  const [, contentsAt, contentsEnd, rest] = prepared.byteRange;
  const shift = prepared.inputLength;
  if (contentsAt < shift) {
    throw new PdfError(`prepared update is inconsistent: /Contents at ${contentsAt} lies in the input`);
  }
  return embedCms(
    {
      bytes: asBuffer(prepared.update),
      byteRange: [0, contentsAt - shift, contentsEnd - shift, rest],
      signatureBytes: prepared.signatureBytes,
    },
    cmsDer,
  );
}
