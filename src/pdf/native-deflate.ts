// pdf-lib compresses every stream it writes (font subsets, ToUnicode maps, page contents) with fflate,
// a deflate written in JavaScript: it was a sixth of a rendered invoice's CPU. Node's zlib (C) does the
// same work in a fraction of the time and writes the same format (RFC 1950), so the fflate that pdf-lib
// loads is handed zlib's deflate instead, once per process or thread, before any document is written.
// Output stays deterministic: the same input and level give the same bytes from the same zlib.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

interface Fflate {
  zlibSync(data: Uint8Array, opts?: { level?: number }): Uint8Array;
}

/** fflate as pdf-lib resolves it (pdf-lib's own dependency, not one of ours). */
function pdfLibsFflate(): Fflate | undefined {
  try {
    return createRequire(require.resolve('pdf-lib'))('fflate') as Fflate;
  } catch {
    return undefined; // pdf-lib without fflate: nothing to replace
  }
}

const fflate = pdfLibsFflate();
const replaceable = fflate !== undefined && typeof fflate.zlibSync === 'function';
if (replaceable) fflate.zlibSync = (data, opts) => zlib.deflateSync(data, { level: opts?.level ?? 6 });

/** Whether pdf-lib's streams go through Node's zlib (a test holds it to that). */
export const nativeDeflate = replaceable;
