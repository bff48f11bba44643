// Where a tenant's audit trail lives and how its files are read: month files
// <outbox>/<tenant>/audit/YYYY-MM.jsonl chained in name order, the HEAD file that records the last
// entry, reading lines with their exact bytes, and reading only a file's tail (month files grow large).
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AuditError } from './audit-entry';
import { writeFileReplacing } from './atomic-write';

export const AUDIT_DIR = 'audit';
export const AUDIT_HEAD = 'HEAD';

const SAFE_TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEX64 = /^[0-9a-f]{64}$/;

export function auditDir(outboxRoot: string, tenant: string): string {
  if (!SAFE_TENANT.test(tenant) || tenant === '.' || tenant === '..') {
    throw new AuditError(`unsafe tenant name for an audit path: ${JSON.stringify(tenant)}`);
  }
  return path.resolve(outboxRoot, tenant, AUDIT_DIR);
}

/** The `*.jsonl` files of an audit folder in chain order (their names sort by month); none if absent. */
export async function listAuditFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AuditError(`cannot list audit folder ${dir}`, { cause: err });
  }
  return names
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .map((n) => path.join(dir, n));
}

/**
 * The last entry as the appender recorded it. A hash chain alone cannot show that its final lines were
 * cut off (what is left is still a valid chain), so the appender writes this under the lock after each
 * append and the verifier checks the log ends exactly here.
 */
export interface AuditHead {
  seq: number;
  /** the last entry's `hash` field */
  hash: string;
  /** SHA-256 of the last line's bytes: the next entry's `prev` */
  lineSha256: string;
  /** name of the file holding the last entry */
  file: string;
}

export async function readAuditHead(dir: string): Promise<AuditHead | undefined> {
  const file = path.join(dir, AUDIT_HEAD);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AuditError(`cannot read audit head ${file}`, { cause: err });
  }
  let head: Partial<AuditHead> | undefined;
  try {
    head = JSON.parse(text) as Partial<AuditHead>;
  } catch {
    head = undefined;
  }
  if (
    !head ||
    !Number.isSafeInteger(head.seq) ||
    (head.seq as number) < 1 ||
    typeof head.hash !== 'string' ||
    !HEX64.test(head.hash) ||
    typeof head.lineSha256 !== 'string' ||
    !HEX64.test(head.lineSha256) ||
    typeof head.file !== 'string'
  ) {
    throw new AuditError(`audit head ${file} is not valid`);
  }
  return head as AuditHead;
}

/** Replaces HEAD atomically (writeFileReplacing): a crash leaves the old or the new one. */
export async function writeAuditHead(dir: string, head: AuditHead): Promise<void> {
  // The folder exists: the lock file that guards this write lives in it.
  await writeFileReplacing(path.join(dir, AUDIT_HEAD), JSON.stringify(head) + '\n', { mkdir: false });
}

export interface AuditLine {
  /** the line's bytes, without its newline */
  bytes: Buffer;
  /** 1-based line number in its file */
  number: number;
  /** false for a final line with no newline: a write that was cut short */
  terminated: boolean;
}

/** Streams a file's lines with their exact bytes (a line's SHA-256 is the next entry's `prev`). */
export async function* readAuditLines(file: string): AsyncGenerator<AuditLine> {
  let pending: Buffer[] = [];
  let number = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, nl));
      yield { bytes: Buffer.concat(pending), number: ++number, terminated: true };
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) yield { bytes: Buffer.concat(pending), number: number + 1, terminated: false };
}

export interface AuditTail {
  size: number;
  /** offset just after the last newline: where an unterminated final line (if any) begins */
  completeEnd: number;
  /** the last newline-terminated line, if the file has one */
  lastLine?: Buffer;
}

const TAIL_CHUNK = 64 * 1024;

/**
 * Reads a file backwards from its end in chunks until `done` has what it needs from the bytes read so
 * far (`buf` holds the file from offset `pos` to its end) or the whole file is read.
 */
async function readBackwards<T>(
  file: string,
  done: (buf: Buffer, pos: number, size: number) => T | undefined,
): Promise<T> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    let pos = size;
    let buf = Buffer.alloc(0);
    for (;;) {
      const result = done(buf, pos, size);
      if (result !== undefined) return result;
      const len = Math.min(TAIL_CHUNK, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      await handle.read(chunk, 0, len, pos);
      buf = Buffer.concat([chunk, buf]);
    }
  } finally {
    await handle.close();
  }
}

/** The offsets of up to `max` newlines in `buf`, from its end. */
function newlinesFromEnd(buf: Buffer, max: number): number[] {
  const found: number[] = [];
  let i = buf.lastIndexOf(0x0a);
  while (i !== -1 && found.length < max) {
    found.push(i);
    // lastIndexOf takes a negative offset from the end, so never pass -1.
    i = i > 0 ? buf.lastIndexOf(0x0a, i - 1) : -1;
  }
  return found;
}

/** The last complete line of a file, read backwards from its end. */
export function readAuditTail(file: string): Promise<AuditTail> {
  return readBackwards(file, (buf, pos, size): AuditTail | undefined => {
    const [lastNl = -1, prevNl = -1] = newlinesFromEnd(buf, 2);
    if (prevNl === -1 && pos > 0) return undefined;
    if (lastNl === -1) return { size, completeEnd: 0 };
    return { size, completeEnd: pos + lastNl + 1, lastLine: buf.subarray(prevNl + 1, lastNl) };
  });
}

/**
 * The last `count` newline-terminated lines of a file (fewer if it has fewer), in file order, read
 * backwards from its end. An unterminated final line is not one of them.
 */
export function readAuditLastLines(file: string, count: number): Promise<Buffer[]> {
  return readBackwards(file, (buf, pos): Buffer[] | undefined => {
    // count + 1 newlines from the end bound `count` lines.
    const newlines = newlinesFromEnd(buf, count + 1);
    if (newlines.length <= count && pos > 0) return undefined;
    const lines: Buffer[] = [];
    for (let k = Math.min(count, newlines.length) - 1; k >= 0; k--) {
      const start = k + 1 < newlines.length ? newlines[k + 1]! + 1 : 0;
      lines.push(buf.subarray(start, newlines[k]));
    }
    return lines;
  });
}
