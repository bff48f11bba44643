// The outbox: sealed PDFs at <root>/<tenant>/<run date>/<invoice>.pdf, written atomically and durably
// (atomic-write.ts), never overwriting an existing file, plus a manifest finance can open in Excel.
import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SealerError } from '../common/errors';
import { invoiceNumberProblem } from '../common/invoice-number';
import {
  FileExistsError,
  sweepTempFiles as sweepLeftovers,
  writeFileExclusive,
  writeFileReplacing,
} from './atomic-write';

export class OutboxError extends SealerError {}

/** The target exists and holds a different document: refusing to overwrite it. */
export class OutboxConflictError extends OutboxError {}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function sealedFilePath(root: string, tenant: string, runDate: string, invoiceNumber: string): string {
  for (const [what, value] of [
    ['tenant', tenant],
    ['run date', runDate],
  ] as const) {
    if (!SAFE_SEGMENT.test(value) || value === '.' || value === '..') {
      throw new OutboxError(`unsafe ${what} for an outbox path: ${JSON.stringify(value)}`);
    }
  }
  // The export reader applies the same rule to each row; checked again so no path can bypass it.
  const problem = invoiceNumberProblem(invoiceNumber);
  if (problem) throw new OutboxError(`unsafe invoice number for an outbox path: ${problem}`);
  const tenantDir = path.resolve(root, tenant);
  const file = path.resolve(tenantDir, runDate, `${invoiceNumber}.pdf`);
  if (path.relative(tenantDir, file).startsWith('..')) {
    throw new OutboxError(`outbox path for invoice ${invoiceNumber} leaves tenant folder ${tenantDir}`);
  }
  return file;
}

export type ExistingSeal = 'absent' | 'same-source' | 'different';

const openFd = promisify(fsSync.open);
const fstatFd = promisify(fsSync.fstat);
const readFd = promisify(fsSync.read);
const closeFd = promisify(fsSync.close);

/** Does `file` already hold a sealed copy of the source whose first `sourceLength` bytes hash to `sourceSha256`? */
export async function checkExistingSeal(
  file: string,
  sourceSha256: string,
  sourceLength: number,
): Promise<ExistingSeal> {
  // Through the callback API: nearly every invoice finds nothing here (ENOENT), and the promise API
  // captures a stack trace for each such error.
  let fd: number;
  try {
    fd = await openFd(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new OutboxError(`cannot read existing outbox file ${file}`, { cause: err });
  }
  try {
    const { size } = await fstatFd(fd);
    if (size <= sourceLength) return 'different';
    const prefix = Buffer.alloc(sourceLength);
    let filled = 0;
    while (filled < sourceLength) {
      const { bytesRead } = await readFd(fd, prefix, filled, sourceLength - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return crypto.createHash('sha256').update(prefix).digest('hex') === sourceSha256
      ? 'same-source'
      : 'different';
  } finally {
    await closeFd(fd);
  }
}

/** A temp file's name beside `file` (see atomic-write.ts). */
export { tempPathFor } from './atomic-write';

/** Removes temp files crashed writers left in `dir` (see atomic-write.ts); returns the count. */
export async function sweepTempFiles(dir: string, maxAgeMs = 3_600_000): Promise<number> {
  try {
    return await sweepLeftovers(dir, maxAgeMs);
  } catch (err) {
    throw new OutboxError(`cannot list ${dir} for leftover temp files`, { cause: err });
  }
}

/**
 * Writes `bytes` to `file` durably, never replacing what is there (writeFileExclusive: temp file,
 * fsync, link, fsync dir), so a sealed file is never silently replaced.
 */
export async function writeNew(file: string, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
  try {
    await writeFileExclusive(file, bytes);
  } catch (err) {
    if (err instanceof FileExistsError) {
      throw new OutboxConflictError(`refusing to overwrite existing outbox file ${file}`, { cause: err });
    }
    throw new OutboxError(`cannot write outbox file ${file}`, { cause: err });
  }
}

/**
 * Writes `bytes` to `file` durably, replacing what is there (writeFileReplacing): a reader sees the
 * old file or the new one, never part of one. For files that describe, not files that are the record
 * (a run report is rewritten when its run settles again); never for sealed PDFs. `bytes` may be
 * pieces made as the file is written (a run report's rows): an error while making them leaves the old
 * file.
 */
export async function writeReplacing(
  file: string,
  bytes: Uint8Array | readonly Uint8Array[] | AsyncIterable<string | Uint8Array>,
): Promise<void> {
  try {
    await writeFileReplacing(file, bytes);
  } catch (err) {
    throw new OutboxError(`cannot write ${file}`, { cause: err });
  }
}

/**
 * Replaces a delivered file with a longer one that contains it (archive renewal): `bytes` must start
 * with the file's current bytes, which must still hash to `expectedSha256` (nobody changed it since it
 * was read). Written with writeFileReplacing: a reader sees the old file or the new one, never a mix.
 * The only place the outbox replaces a file, on purpose.
 */
export async function replaceWithGrown(file: string, bytes: Buffer, expectedSha256: string): Promise<void> {
  const current = await fs.readFile(file).catch((err: unknown) => {
    throw new OutboxError(`cannot read outbox file ${file} to renew it`, { cause: err });
  });
  if (crypto.createHash('sha256').update(current).digest('hex') !== expectedSha256) {
    throw new OutboxConflictError(`outbox file ${file} changed since it was read; not replacing it`);
  }
  if (bytes.length <= current.length || !bytes.subarray(0, current.length).equals(current)) {
    throw new OutboxConflictError(
      `refusing to replace ${file}: the new bytes do not start with the old file`,
    );
  }
  try {
    // The folder exists (the file was just read from it).
    await writeFileReplacing(file, bytes, { mkdir: false });
  } catch (err) {
    throw new OutboxError(`cannot replace outbox file ${file}`, { cause: err });
  }
}

/**
 * Sweeps a tenant's outbox for temp files left by crashed writers: the sealed index, the audit folder
 * and the run-date folders of the last `days` days (a crash leaves them where a night was writing).
 */
export async function sweepTenantOutbox(root: string, tenant: string, days = 31): Promise<number> {
  const tenantDir = path.join(root, tenant);
  let names: string[];
  try {
    names = await fs.readdir(tenantDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new OutboxError(`cannot list outbox folder ${tenantDir}`, { cause: err });
  }
  const since = new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
  const folders = names.filter(
    (n) => n === '.sealed' || n === 'audit' || (/^\d{4}-\d{2}-\d{2}$/.test(n) && n >= since),
  );
  let removed = await sweepTempFiles(tenantDir);
  for (const f of folders) removed += await sweepTempFiles(path.join(tenantDir, f));
  return removed;
}
