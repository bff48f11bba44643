// The outbox: sealed PDFs at <root>/<tenant>/<run date>/<invoice>.pdf, written atomically and durably,
// never overwriting an existing file, plus a manifest finance can open in Excel.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SealerError } from '../common/errors';

export class OutboxError extends SealerError {}

/** The target exists and holds a different document: refusing to overwrite it. */
export class OutboxConflictError extends OutboxError {}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function sealedFilePath(root: string, tenant: string, runDate: string, invoiceNumber: string): string {
  for (const [what, value] of [
    ['tenant', tenant],
    ['run date', runDate],
    ['invoice number', invoiceNumber],
  ] as const) {
    if (!SAFE_SEGMENT.test(value) || value === '.' || value === '..') {
      throw new OutboxError(`unsafe ${what} for an outbox path: ${JSON.stringify(value)}`);
    }
  }
  const tenantDir = path.resolve(root, tenant);
  const file = path.resolve(tenantDir, runDate, `${invoiceNumber}.pdf`);
  if (path.relative(tenantDir, file).startsWith('..')) {
    throw new OutboxError(`outbox path for invoice ${invoiceNumber} leaves tenant folder ${tenantDir}`);
  }
  return file;
}

export type ExistingSeal = 'absent' | 'same-source' | 'different';

/** Does `file` already hold a sealed copy of the source whose first `sourceLength` bytes hash to `sourceSha256`? */
export async function checkExistingSeal(
  file: string,
  sourceSha256: string,
  sourceLength: number,
): Promise<ExistingSeal> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new OutboxError(`cannot read existing outbox file ${file}`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    if (size <= sourceLength) return 'different';
    const prefix = Buffer.alloc(sourceLength);
    await handle.read(prefix, 0, sourceLength, 0);
    return crypto.createHash('sha256').update(prefix).digest('hex') === sourceSha256
      ? 'same-source'
      : 'different';
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `bytes` to `file` durably (temp file, fsync, link, fsync dir). The final name is created with
 * link(), which fails if it exists, so a sealed file is never silently replaced.
 */
export async function writeNew(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(
    dir,
    `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`,
  );
  const handle = await fs.open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new OutboxConflictError(`refusing to overwrite existing outbox file ${file}`, { cause: err });
    }
    throw new OutboxError(`cannot write outbox file ${file}`, { cause: err });
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await fsyncDir(dir);
}
