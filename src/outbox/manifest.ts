// The per-folder manifest (manifest.csv): one row per sealed invoice, UTF-8 with a BOM so Excel shows
// Japanese correctly. Rows are single appends of one line, which O_APPEND keeps whole across processes.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';

export interface ManifestRow {
  invoiceNumber: string;
  file: string;
  sealedSha256: string;
  sourceSha256: string;
  signingTime: string;
  certificateSerial: string;
  job: string;
  runId: string;
}

export const MANIFEST_NAME = 'manifest.csv';
const COLUMNS: (keyof ManifestRow)[] = [
  'invoiceNumber',
  'file',
  'sealedSha256',
  'sourceSha256',
  'signingTime',
  'certificateSerial',
  'job',
  'runId',
];

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export async function appendManifestRow(dir: string, row: ManifestRow): Promise<string> {
  const file = path.join(dir, MANIFEST_NAME);
  await fs.mkdir(dir, { recursive: true });
  try {
    await fs.writeFile(file, '\uFEFF' + COLUMNS.join(',') + '\r\n', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await fs.appendFile(file, COLUMNS.map((c) => csvField(row[c])).join(',') + '\r\n');
  return file;
}

export async function readManifest(file: string): Promise<ManifestRow[]> {
  const text = await fs.readFile(file, 'utf8');
  return parse(text, { bom: true, columns: true, skip_empty_lines: true }) as ManifestRow[];
}
