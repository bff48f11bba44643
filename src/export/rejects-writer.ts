// The rejects file: one CSV per read export listing every row that was not accepted and why. It is
// UTF-8 with a BOM so Excel opens the Japanese text right, and it only comes into being on the first reject.
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { parse } from 'csv-parse/sync';
import { excelRead, excelSafe } from '../common/excel-cell';
import { csvLine } from '../common/csv-text';
import type { RejectedRow } from './types';

const UTF8_BOM = '\ufeff';
const HEADER = ['line', 'invoiceNumber', 'reason'];

export class RejectsWriter {
  private readonly path: string;
  private out: fs.WriteStream | undefined;
  private count = 0;
  private closed = false;
  private failure: Error | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async add(row: RejectedRow): Promise<void> {
    if (this.closed) throw new Error(`rejects file ${this.path} is already closed`);
    if (!this.out) {
      await fs.promises.mkdir(path.dirname(this.path), { recursive: true });
      this.out = fs.createWriteStream(this.path);
      // Keep a write error for the next add/close instead of letting it crash the process.
      this.out.on('error', (err) => (this.failure ??= err));
      await once(this.out, 'open');
      this.out.write(UTF8_BOM + csvLine(HEADER));
    }
    if (this.failure) throw this.failure;
    this.count++;
    const ok = this.out.write(
      csvLine([String(row.line), excelSafe(row.invoiceNumber ?? ''), excelSafe(row.reason)]),
    );
    if (!ok) await once(this.out, 'drain');
  }

  /** Flushes and closes; returns how many rows were written (0: no file was created). */
  async close(): Promise<number> {
    if (this.closed) return this.count;
    this.closed = true;
    if (this.out) {
      const out = this.out;
      // A stream that failed to open is already closed: waiting for 'close' would never end.
      if (!out.closed) {
        const done = once(out, 'close');
        out.end();
        await done;
      }
      if (this.failure) throw this.failure;
    }
    return this.count;
  }
}

/** The rows of a rejects file written by RejectsWriter, with their cells as they were before
 * excelSafe (what a run report merges). */
export async function readRejectsFile(file: string): Promise<RejectedRow[]> {
  const text = await fs.promises.readFile(file, 'utf8');
  const records = parse(text, { bom: true, columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  return records.map((r) => ({
    line: Number(r.line),
    ...(r.invoiceNumber ? { invoiceNumber: excelRead(r.invoiceNumber) } : {}),
    reason: excelRead(r.reason ?? ''),
  }));
}
