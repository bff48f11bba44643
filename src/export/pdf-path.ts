// Resolving a row's PDF path against the export's folder. The export is data from another system, so
// a path may only name a file inside that folder: no absolute paths, no `..`, no symlink that leads out,
// no hard link (a second name of a file that may live elsewhere).
import fs from 'node:fs';
import path from 'node:path';

export type PdfPathResult = { ok: true; absolute: string; relative: string } | { ok: false; problem: string };

const LEAVES = 'path leaves the export folder';

/** True if `target` is `dir` itself or lies below it (both absolute, normalised). */
function isInside(dir: string, target: string): boolean {
  const rel = path.relative(dir, target);
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/**
 * One per export read. Folders' real paths are cached, so a typical row costs one lstat rather than
 * a realpath (an lstat per path component) and a stat.
 */
export class PdfPathResolver {
  private readonly realDirs = new Map<string, Promise<string>>();

  /** @param exportDirReal the export's folder, already realpath-resolved */
  constructor(private readonly exportDirReal: string) {}

  /**
   * @param cell the trimmed pdfPath cell; `\` is taken as a separator too (Windows and CP932
   *   exports, where the yen sign and the backslash are one byte)
   */
  async resolve(cell: string): Promise<PdfPathResult> {
    if (cell.includes('\0')) return { ok: false, problem: 'contains a NUL character' };
    const given = cell.replace(/\\/g, '/');
    if (path.posix.isAbsolute(given) || /^[A-Za-z]:/.test(given)) {
      return { ok: false, problem: `${LEAVES} (absolute path ${cell})` };
    }
    const lexical = path.resolve(this.exportDirReal, given);
    if (!isInside(this.exportDirReal, lexical)) return { ok: false, problem: `${LEAVES} (${cell})` };
    const relative = path.relative(this.exportDirReal, lexical).split(path.sep).join('/');
    const notFound = { ok: false, problem: `PDF not found: ${relative}` } as const;
    const throughSymlink = { ok: false, problem: `${LEAVES} (${cell} leads out through a symlink)` } as const;
    const unreadable = (err: unknown) =>
      ({ ok: false, problem: `PDF cannot be read: ${relative} (${errorCode(err)})` }) as const;

    try {
      const realParent = await this.realDir(path.dirname(lexical));
      if (!isInside(this.exportDirReal, realParent)) return throughSymlink;
      let real = path.join(realParent, path.basename(lexical));
      let stat = await fs.promises.lstat(real);
      if (stat.isSymbolicLink()) {
        real = await fs.promises.realpath(real);
        if (!isInside(this.exportDirReal, real)) return throughSymlink;
        stat = await fs.promises.stat(real);
      }
      if (!stat.isFile()) return { ok: false, problem: `PDF is not a file: ${relative}` };
      // A second name for the same bytes may lie anywhere on the volume (a hard link to a file from
      // outside the export folder): the lexical and symlink checks cannot see where, so refuse it.
      if (stat.nlink > 1) {
        return {
          ok: false,
          problem: `PDF is a hard link (${stat.nlink} names for one file; one may be outside the export folder): ${relative}`,
        };
      }
      return { ok: true, absolute: real, relative };
    } catch (err) {
      const code = errorCode(err);
      return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' ? notFound : unreadable(err);
    }
  }

  private realDir(dir: string): Promise<string> {
    let real = this.realDirs.get(dir);
    if (real === undefined) {
      real = fs.promises.realpath(dir);
      // A failure is cached too and reported by each row that needs the folder.
      real.catch(() => undefined);
      this.realDirs.set(dir, real);
    }
    return real;
  }
}
