// An exclusive lock between processes (several `sealer work` processes append to one tenant's audit
// trail): a lock file created with O_EXCL, waited for with backoff, and taken over when its holder has
// died or hung. Nothing in node_modules does this (proper-lockfile is not installed), and it is small.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import { AuditError } from './audit-entry';
import { processAlive } from '../common/process-alive';

export interface FileLockOptions {
  /**
   * A lock file untouched for this long is taken over: its holder crashed or hung. Holders touch it
   * every staleMs / 3, so only a process stalled that long loses it. Default 10 000.
   */
  staleMs?: number;
  /** Give up waiting after this long. Default 60 000. */
  timeoutMs?: number;
}

interface Holder {
  pid: number;
  host: string;
  token: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.token === 'string'
      ? (h as Holder)
      : undefined;
  } catch {
    return undefined; // still being written, or garbage: judged by its age alone
  }
}

// Lock files this process has acquired, for tests and metrics (group commit takes one per group).
let acquired = 0;

export class FileLock {
  /** How many locks this process has acquired so far. */
  static get acquisitions(): number {
    return acquired;
  }

  private constructor(
    readonly path: string,
    private readonly token: string,
    private readonly heartbeat: NodeJS.Timeout,
  ) {}

  static async acquire(lockPath: string, options: FileLockOptions = {}): Promise<FileLock> {
    const staleMs = options.staleMs ?? 10_000;
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const holder: Holder = {
      pid: process.pid,
      host: os.hostname(),
      token: crypto.randomBytes(12).toString('hex'),
    };
    for (let attempt = 0; ; attempt++) {
      if (await tryCreate(lockPath, holder)) {
        acquired++;
        const heartbeat = setInterval(() => {
          const now = new Date();
          fs.utimes(lockPath, now, now).catch(() => undefined);
        }, staleMs / 3);
        heartbeat.unref();
        return new FileLock(lockPath, holder.token, heartbeat);
      }
      if (await takeOverIfStale(lockPath, staleMs)) continue;
      if (Date.now() > deadline) {
        throw new AuditError(`timed out waiting for lock ${lockPath}`);
      }
      // Jittered exponential backoff, capped low: holders keep the lock for a few fsyncs only.
      await sleep(Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
    }
  }

  /** Whether the lock file is still ours (it is not if a stall let another process take it over). */
  async stillHeld(): Promise<boolean> {
    const text = await fs.readFile(this.path, 'utf8').catch(() => '');
    return parseHolder(text)?.token === this.token;
  }

  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    // Never remove a lock another process has taken over meanwhile.
    if (await this.stillHeld()) await fs.unlink(this.path).catch(() => undefined);
  }
}

async function tryCreate(lockPath: string, holder: Holder): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(lockPath, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new AuditError(`cannot create lock ${lockPath}`, { cause: err });
  }
  try {
    await handle.writeFile(JSON.stringify(holder));
  } catch (err) {
    await handle.close();
    await fs.unlink(lockPath).catch(() => undefined);
    throw new AuditError(`cannot write lock ${lockPath}`, { cause: err });
  }
  await handle.close();
  return true;
}

/**
 * Removes the lock if its holder is gone: a process of this host that no longer exists, or a file
 * untouched for `staleMs`. Returns true when the caller should try to create the lock again at once.
 */
async function takeOverIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  let text: string;
  let stat: import('node:fs').Stats;
  try {
    stat = await fs.stat(lockPath);
    text = await fs.readFile(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true; // released meanwhile
    throw new AuditError(`cannot read lock ${lockPath}`, { cause: err });
  }
  const holder = parseHolder(text);
  const dead =
    holder !== undefined &&
    holder.host === os.hostname() &&
    holder.pid !== process.pid &&
    !processAlive(holder.pid);
  if (!dead && Date.now() - stat.mtimeMs < staleMs) return false;
  // Move the stale file aside rather than unlink it: rename is atomic, so of several processes that judged
  // it stale only one moves it, and that one can check it moved the file it judged and not a fresh lock
  // created in between (which it then puts back; link() never replaces a lock created since).
  const aside = `${lockPath}.stale.${process.pid}.${crypto.randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw new AuditError(`cannot take over stale lock ${lockPath}`, { cause: err });
  }
  const moved = await fs.stat(aside);
  const movedText = await fs.readFile(aside, 'utf8');
  if (moved.ino !== stat.ino || movedText !== text) {
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  await fs.unlink(aside).catch(() => undefined);
  return true;
}
