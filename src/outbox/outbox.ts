// The outbox: sealed PDFs at <root>/<tenant>/<run date>/<invoice>.pdf, written atomically and durably,
// never overwriting an existing file, plus a manifest finance can open in Excel.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SealerError } from '../common/errors';
import { invoiceNumberProblem } from '../common/invoice-number';
import { processAlive } from '../common/process-alive';

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

// Temp files name their host and process, so a sweep can tell a dead writer's leftovers from a live
// writer's file: `.<name>.<host>~<pid>.<random>.tmp`.
const HOST =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '_')
    .slice(0, 40) || 'host';
const TEMP = /^\.(.+)\.([A-Za-z0-9_-]+)~(\d+)\.[0-9a-f]+\.tmp$/;

/** A temp file's name beside `file`, to be renamed or linked into place. */
export function tempPathFor(file: string): string {
  const name = `.${path.basename(file)}.${HOST}~${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  return path.join(path.dirname(file), name);
}

/**
 * Removes temp files a crashed writer left in `dir`: those of this host whose process is gone, and
 * any older than `maxAgeMs` (another host's writer takes milliseconds, not an hour). Returns the count.
 */
export async function sweepTempFiles(dir: string, maxAgeMs = 3_600_000): Promise<number> {
  // Streamed: the sealed index holds one file per invoice ever sealed, too many to list in memory.
  let names: AsyncIterable<{ name: string }>;
  try {
    names = await fs.opendir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new OutboxError(`cannot list ${dir} for leftover temp files`, { cause: err });
  }
  let removed = 0;
  for await (const { name } of names) {
    const m = TEMP.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    const pid = Number(m[3]);
    let stale = m[2] === HOST && pid !== process.pid && !processAlive(pid);
    if (!stale) {
      const st = await fs.stat(file).catch(() => undefined);
      stale = st !== undefined && Date.now() - st.mtimeMs > maxAgeMs;
    }
    if (stale) {
      await fs.rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Writes `bytes` to `file` durably (temp file, fsync, link, fsync dir). The final name is created with
 * link(), which fails if it exists, so a sealed file is never silently replaced.
 */
export async function writeNew(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = tempPathFor(file);
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

/**
 * Writes `bytes` to `file` durably, replacing what is there (temp file, fsync, rename, fsync dir): a
 * reader sees the old file or the new one, never part of one. For files that describe, not files
 * that are the record (a run report is rewritten when its run settles again); never for sealed PDFs.
 */
export async function writeReplacing(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = tempPathFor(file);
  try {
    const handle = await fs.open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new OutboxError(`cannot write ${file}`, { cause: err });
  }
  await fsyncDir(dir);
}

/**
 * Replaces a delivered file with a longer one that contains it (archive renewal): `bytes` must start
 * with the file's current bytes, which must still hash to `expectedSha256` (nobody changed it since it
 * was read). Temp file, fsync, rename over the old one, fsync dir: a reader sees the old file or the
 * new one, never a mix. The only place the outbox replaces a file, on purpose.
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
  const tmp = tempPathFor(file);
  const handle = await fs.open(tmp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new OutboxError(`cannot replace outbox file ${file}`, { cause: err });
  }
  await fsyncDir(path.dirname(file));
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
