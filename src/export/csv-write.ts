// Writing CSV files: exports for fixtures and benchmarks (in any encoding a core system would use)
// with RFC 4180 quoting and CRLF line ends (csv-stringify, through ../common/csv-text.ts).
import fs from 'node:fs';
import { once } from 'node:events';
import iconv from 'iconv-lite';
import { csvLine, csvRecords } from '../common/csv-text';

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export { csvLine };

export function encodeCsvText(text: string, encoding: 'utf8' | 'utf8-bom' | 'cp932'): Buffer {
  return encoding === 'cp932' ? iconv.encode(text, 'cp932') : Buffer.from(text, 'utf8');
}

/** How long ago a written export was finished by default: past any quiet period a job may ask for. */
const FINISHED_AGO_MS = 25 * 3600 * 1000;

/**
 * Writes an export file as a core system leaves it before the night: complete, its mtime set
 * `finishedAt` (default: 25 hours ago, beyond the longest quiet period a job may ask for, so that a
 * producer takes it at once). Rows are written in slices so a benchmark's large export never has to
 * be one string. Characters CP932 cannot hold are written as `?` by iconv-lite.
 */
export async function writeExportCsv(
  file: string,
  headers: string[],
  rows: string[][],
  encoding: 'utf8' | 'utf8-bom' | 'cp932',
  finishedAt: Date = new Date(Date.now() - FINISHED_AGO_MS),
): Promise<void> {
  const out = fs.createWriteStream(file);
  const finished = once(out, 'close');
  const write = async (buf: Buffer) => {
    if (!out.write(buf)) await once(out, 'drain');
  };
  try {
    if (encoding === 'utf8-bom') await write(UTF8_BOM);
    await write(encodeCsvText(csvLine(headers), encoding));
    const slice = 1000;
    for (let i = 0; i < rows.length; i += slice) {
      await write(encodeCsvText(csvRecords(rows.slice(i, i + slice)), encoding));
    }
  } catch (err) {
    out.destroy();
    throw err;
  }
  out.end();
  await finished;
  if (out.errored) throw out.errored;
  await fs.promises.utimes(file, finishedAt, finishedAt);
}
