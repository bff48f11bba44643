// The product's one way to write a file that must survive a crash whole (../shared/DESIGN.md: the
// outbox owns atomic writes for every part): a temp file beside the target, fsync, then rename (replace)
// or link (never replace), then fsync the folder; and durable appends for logs. Temp files name their
// host and process, so sweepTempFiles can tell a dead writer's leftovers from a live writer's file.
// It imports nothing of the outbox's own, so lower parts (jobs, sandbox) can use it without the rest.
import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SealerError } from '../common/errors';
import { KeyedGroupCommit } from '../common/group-commit';
import { processAlive } from '../common/process-alive';

/** A write that did not happen; names the target file and keeps the system error's `code`. */
export class AtomicWriteError extends SealerError {
  readonly code: string | undefined;
  constructor(
    message: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = (options?.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** An exclusive write found the target already there; what is there was left untouched. */
export class FileExistsError extends AtomicWriteError {}

export interface AtomicWriteOptions {
  /** Permission bits of the new file (less the umask). Default 0o644; secrets and keys pass 0o600. */
  mode?: number;
  /**
   * Creates missing parent folders first: `true` (default) with the default mode, a number for their
   * mode (0o700 for a folder of secrets), `false` when the caller made the folder itself.
   */
  mkdir?: boolean | number;
  /**
   * Whether to fsync the file and its folder (default true). Without it the write is still whole or
   * nothing for readers, but a power cut may lose it: only for throwaway data (the sandbox's test PKI).
   */
  durable?: boolean;
}

type Data = string | Uint8Array;
/**
 * Data, or bytes in pieces (a sealed file is the input followed by its update), or pieces made while
 * the file is written (a run report of hundreds of thousands of rows, never whole in memory).
 */
type Pieces = Data | readonly Uint8Array[] | AsyncIterable<Data>;

/** Writes `data` at the handle's position 0 onwards, whole. */
async function writeAll(handle: fs.FileHandle, data: Pieces): Promise<void> {
  if (typeof data === 'string' || data instanceof Uint8Array) {
    await handle.writeFile(data);
    return;
  }
  if (Symbol.asyncIterator in data) {
    // Each piece goes on where the last ended (writeFile writes from the handle's position, whole).
    for await (const piece of data) await handle.writeFile(piece);
    return;
  }
  // One writev for the pieces; a short write (allowed, rare on a local file) goes on piece by piece.
  let { bytesWritten } = await handle.writev(data as Uint8Array[]);
  for (const piece of data) {
    if (bytesWritten >= piece.length) {
      bytesWritten -= piece.length;
      continue;
    }
    await handle.writeFile(piece.subarray(bytesWritten));
    bytesWritten = 0;
  }
}

// `.<name>.<host>~<pid>.<random>.tmp`: hidden, and never a name any reader of a folder looks for.
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
 * Syncs a folder, so that a rename, link or new file in it survives a power cut. Callers that finish
 * their link or rename in the same turn, or while a sync of the folder runs, share the next sync (a
 * group commit): each is resolved only by a sync that began after its own change.
 */
export function fsyncDir(dir: string): Promise<void> {
  return folderSyncs.submit(dir, undefined);
}

const folderSyncs = new KeyedGroupCommit<undefined>(async (dir) => syncFolder(dir));

async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function fsyncDirSync(dir: string): void {
  const fd = fsSync.openSync(dir, 'r');
  try {
    fsSync.fsyncSync(fd);
  } finally {
    fsSync.closeSync(fd);
  }
}

/** Folders this process made or found (a night writes thousands of files into a few folders). */
const madeFolders = new Set<string>();

/** Makes the file's folder; returns true when it was skipped as known (so a retry may make it). */
async function makeParent(file: string, option: AtomicWriteOptions['mkdir']): Promise<boolean> {
  if (option === false) return false;
  const dir = path.dirname(file);
  if (madeFolders.has(dir)) return true;
  await fs.mkdir(dir, {
    recursive: true,
    ...(typeof option === 'number' ? { mode: option } : {}),
  });
  if (madeFolders.size >= 4096) madeFolders.clear();
  madeFolders.add(dir);
  return false;
}

/** makeParent, then `create` (which makes a name in the file's folder); a folder known to this
 * process but removed since is made again and `create` tried once more. */
async function inFolder<T>(
  file: string,
  option: AtomicWriteOptions['mkdir'],
  create: () => Promise<T>,
): Promise<T> {
  const skipped = await makeParent(file, option);
  try {
    return await create();
  } catch (err) {
    if (!skipped || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    madeFolders.delete(path.dirname(file));
    await makeParent(file, option);
    return create();
  }
}

const openFd = promisify(fsSync.open);
const writevFd = promisify(fsSync.writev);
const fsyncFd = promisify(fsSync.fsync);
const closeFd = promisify(fsSync.close);

/** Writes `pieces` whole at the descriptor's position onwards (one writev; a short write goes on). */
async function writeAllFd(fd: number, pieces: readonly Uint8Array[]): Promise<void> {
  let rest = pieces.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await writevFd(fd, rest as NodeJS.ArrayBufferView[]);
    if (bytesWritten === 0) throw new Error('write() wrote nothing');
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
  }
}

/** Writes `data` to a new temp file beside `file` and syncs it; returns the temp file's path. Only
 * making the temp file is tried again (inFolder): pieces made while writing can be read only once.
 * Bytes known up front (a sealed file, a record) go through plain descriptors: a night writes one
 * such file per invoice, and the promise API's FileHandle costs more than the calls themselves. */
async function writeTempInFolder(file: string, data: Pieces, options: AtomicWriteOptions): Promise<string> {
  if (typeof data !== 'string' && !(data instanceof Uint8Array) && Symbol.asyncIterator in data) {
    return writeTempWithHandle(file, data, options);
  }
  const pieces = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
  const { tmp, fd } = await inFolder(file, options.mkdir, async () => {
    const name = tempPathFor(file);
    return { tmp: name, fd: await openFd(name, 'wx', options.mode ?? 0o644) };
  });
  try {
    await writeAllFd(fd, pieces as readonly Uint8Array[]);
    if (options.durable !== false) await fsyncFd(fd);
  } catch (err) {
    await closeFd(fd).catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await closeFd(fd);
  return tmp;
}

/** writeTempInFolder for pieces made while the file is written (an async iterable). */
async function writeTempWithHandle(file: string, data: Pieces, options: AtomicWriteOptions): Promise<string> {
  const { tmp, handle } = await inFolder(file, options.mkdir, async () => {
    const name = tempPathFor(file);
    return { tmp: name, handle: await fs.open(name, 'wx', options.mode ?? 0o644) };
  });
  try {
    await writeAll(handle, data);
    if (options.durable !== false) await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  return tmp;
}

/** Removes a temp file; one already gone is fine (fs.rm with force would lstat it first). */
async function removeTemp(tmp: string): Promise<void> {
  await fs.unlink(tmp).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

/**
 * Writes `file` whole, replacing what is there: a reader, or the file after a crash, holds the old
 * bytes or the new ones, never a part. For files that describe (reports, state, HEAD); never for a
 * sealed PDF, which writeFileExclusive keeps from being replaced. `data` may be pieces made while the
 * file is written (an async iterable): if making one throws, the old file stays and no temp file does.
 */
export async function writeFileReplacing(
  file: string,
  data: Pieces,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(file);
  try {
    const tmp = await writeTempInFolder(file, data, options);
    try {
      await fs.rename(tmp, file);
    } catch (err) {
      await removeTemp(tmp);
      throw err;
    }
    if (options.durable !== false) await fsyncDir(dir);
  } catch (err) {
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
}

/**
 * Creates `file` whole, or fails with FileExistsError if it exists: link() never replaces a name, so
 * what is there (a sealed PDF, a record, a secret another process made first) is never overwritten.
 */
export async function writeFileExclusive(
  file: string,
  data: Pieces,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(file);
  let tmp: string;
  try {
    tmp = await writeTempInFolder(file, data, options);
  } catch (err) {
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FileExistsError(`${file} exists: not overwriting it`, file, { cause: err });
    }
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  } finally {
    await removeTemp(tmp);
  }
  try {
    if (options.durable !== false) await fsyncDir(dir);
  } catch (err) {
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
}

/** Errors by which a file system says it keeps no symbolic links (an SMB share, some NAS mounts). */
const NO_SYMLINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL']);

/**
 * Creates `file` as a small record, or fails with FileExistsError if it exists (what is there is kept).
 * The record is the target of a symbolic link (as Emacs keeps its lock files): one syscall makes it,
 * whole or not at all, and the folder's sync makes it durable, so it costs no temp file, no file sync
 * and no link or unlink; a file system without symbolic links gets a file (writeFileExclusive).
 * `record` is one line of printable ASCII (it is a link target: no NUL, no newline needed to end it).
 */
export async function createRecord(file: string, record: string): Promise<void> {
  if (!/^[\x20-\x7e]{1,1000}$/.test(record)) {
    throw new AtomicWriteError(`cannot write ${file}: a record must be one line of printable ASCII`, file);
  }
  const dir = path.dirname(file);
  try {
    await inFolder(file, true, () => fs.symlink(record, file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new FileExistsError(`${file} exists: not overwriting it`, file, { cause: err });
    if (code !== undefined && NO_SYMLINKS.has(code)) return writeFileExclusive(file, `${record}\n`);
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
  try {
    await fsyncDir(dir);
  } catch (err) {
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
}

/**
 * fs.readlink through its callback: most lookups of a record find none (ENOENT), and the promise API
 * captures a stack trace for every such error (about half of a failed lookup's CPU).
 */
function readlinkQuietly(file: string): Promise<string> {
  return new Promise((resolve, reject) =>
    fsSync.readlink(file, (err, target) => (err ? reject(err) : resolve(target))),
  );
}

/** The record createRecord made at `file` (a link's target, or a file's text less its last newline);
 * undefined if absent. */
export async function readRecord(file: string): Promise<string | undefined> {
  try {
    return await readlinkQuietly(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // EINVAL: not a link, so a record written as a file (no symbolic links there, or an older entry).
    if (code !== 'EINVAL') throw err;
  }
  try {
    return (await fs.readFile(file, 'utf8')).replace(/\n$/, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Appends `data` to `file` (created if missing) and syncs it before returning; a new file's folder
 * is synced too. One write() under O_APPEND keeps a record whole when several processes append.
 */
export async function appendFileDurably(file: string, data: Data): Promise<{ created: boolean }> {
  let created = true;
  try {
    // Most appends go to a file that exists: one open; a missing one is created exclusively, so exactly
    // one of several appending processes knows it created it (and syncs the folder).
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, fsSync.constants.O_WRONLY | fsSync.constants.O_APPEND);
      created = false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      try {
        handle = await fs.open(file, 'ax');
      } catch (again) {
        if ((again as NodeJS.ErrnoException).code !== 'EEXIST') throw again;
        created = false;
        handle = await fs.open(file, 'a');
      }
    }
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (created) await fsyncDir(path.dirname(file));
  } catch (err) {
    throw new AtomicWriteError(`cannot append to ${file}`, file, { cause: err });
  }
  return { created };
}

/**
 * writeFileReplacing for the few synchronous callers (the sandbox's OTP "phone" and revocation list,
 * written inside request handlers that answer from memory right after).
 */
export function writeFileReplacingSync(file: string, data: Data, options: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file);
  try {
    if (options.mkdir !== false) {
      fsSync.mkdirSync(dir, {
        recursive: true,
        ...(typeof options.mkdir === 'number' ? { mode: options.mkdir } : {}),
      });
    }
    const tmp = tempPathFor(file);
    try {
      const fd = fsSync.openSync(tmp, 'wx', options.mode ?? 0o644);
      try {
        fsSync.writeFileSync(fd, data);
        if (options.durable !== false) fsSync.fsyncSync(fd);
      } finally {
        fsSync.closeSync(fd);
      }
      fsSync.renameSync(tmp, file);
    } catch (err) {
      fsSync.rmSync(tmp, { force: true });
      throw err;
    }
    if (options.durable !== false) fsyncDirSync(dir);
  } catch (err) {
    throw new AtomicWriteError(`cannot write ${file}`, file, { cause: err });
  }
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
    throw new AtomicWriteError(`cannot list ${dir} for leftover temp files`, dir, { cause: err });
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
