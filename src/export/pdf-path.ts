// Resolving a row's PDF path against the export's folder. The export is data from another system, so
// a path may only name a file inside that folder: no absolute paths, no `..`, no symlink that leads out.
import fs from 'node:fs';
import path from 'node:path';

export type PdfPathResult = { ok: true; absolute: string; relative: string } | { ok: false; problem: string };

const LEAVES = 'path leaves the export folder';

/** True if `target` is `dir` itself or lies below it (both absolute, normalised). */
function isInside(dir: string, target: string): boolean {
  const rel = path.relative(dir, target);
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * @param exportDirReal the export's folder, already realpath-resolved
 * @param cell the trimmed pdfPath cell; `\` is taken as a separator too (Windows and CP932 exports,
 *   where the yen sign and the backslash are one byte)
 */
export async function resolvePdfPath(exportDirReal: string, cell: string): Promise<PdfPathResult> {
  if (cell.includes('\0')) return { ok: false, problem: 'contains a NUL character' };
  const given = cell.replace(/\\/g, '/');
  if (path.posix.isAbsolute(given) || /^[A-Za-z]:/.test(given)) {
    return { ok: false, problem: `${LEAVES} (absolute path ${cell})` };
  }
  const lexical = path.resolve(exportDirReal, given);
  if (!isInside(exportDirReal, lexical)) return { ok: false, problem: `${LEAVES} (${cell})` };
  const relative = path.relative(exportDirReal, lexical).split(path.sep).join('/');

  let real: string;
  try {
    real = await fs.promises.realpath(lexical);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, problem: `PDF not found: ${relative}` };
    return { ok: false, problem: `PDF cannot be read: ${relative} (${code ?? String(err)})` };
  }
  if (!isInside(exportDirReal, real))
    return { ok: false, problem: `${LEAVES} (${cell} leads out through a symlink)` };

  try {
    const stat = await fs.promises.stat(real);
    if (!stat.isFile()) return { ok: false, problem: `PDF is not a file: ${relative}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, problem: `PDF cannot be read: ${relative} (${code ?? String(err)})` };
  }
  return { ok: true, absolute: real, relative };
}
