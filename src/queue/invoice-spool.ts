// The invoice spool: the records of a data export's invoices, one JSON line each, appended as the
// producer reads the export and made durable before the jobs that point into it are queued. A job's
// source is its record (spool file, offset, length); the spool is never rewritten, so a record stays
// where its job says until ops removes the spool with the processed export it came from.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RecordLocation } from '../seal';
import { fsyncDir } from '../outbox';

const NEWLINE = Buffer.from('\n');

export class InvoiceSpool {
  private handle?: fs.FileHandle;
  private size = 0;
  private unwritten: Buffer[] = [];
  private synced = true;
  private written = 0;
  /** bytes durable in the file */
  private flushed = 0;
  private broken?: Error;

  private constructor(readonly file: string) {}

  /**
   * A new spool for `exportFile` in its processed/ folder, beside where the export goes when done: a
   * name of its own per producer (two producers of one export never share a file).
   */
  static forExport(exportFile: string, runId: string): InvoiceSpool {
    const name = `${runId}-${path.basename(exportFile)}.${crypto.randomBytes(4).toString('hex')}.invoices.jsonl`;
    return new InvoiceSpool(path.join(path.dirname(exportFile), 'processed', name));
  }

  /** Records appended so far. */
  get records(): number {
    return this.written;
  }

  /** Appends one record (written at the next sync); returns where it will lie. */
  append(record: Buffer): RecordLocation {
    const at = { offset: this.size, length: record.length };
    this.unwritten.push(record, NEWLINE);
    this.size += record.length + 1;
    this.written++;
    this.synced = false;
    return at;
  }

  /** Writes what was appended and makes it durable (the file, and its name in the folder once). */
  async sync(): Promise<void> {
    if (this.synced) return;
    if (this.handle === undefined) {
      // A processed/ made now is itself a name in the export's folder: durable too.
      const made = await fs.mkdir(path.dirname(this.file), { recursive: true });
      this.handle = await fs.open(this.file, 'wx');
      await fsyncDir(path.dirname(this.file));
      if (made !== undefined) await fsyncDir(path.dirname(path.dirname(this.file)));
    }
    if (this.broken) throw this.broken;
    const bytes = Buffer.concat(this.unwritten);
    this.unwritten = [];
    try {
      // At the offset the records were promised, whatever a short write did before.
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await this.handle.write(
          bytes,
          done,
          bytes.length - done,
          this.flushed + done,
        );
        done += bytesWritten;
      }
      await this.handle.datasync();
    } catch (err) {
      // The records' places are no longer sure: nothing more is appended to this spool.
      this.broken = err as Error;
      throw err;
    }
    this.flushed += bytes.length;
    this.synced = true;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}
