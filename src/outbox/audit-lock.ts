// An exclusive lock between processes (several `sealer work` processes append to one tenant's audit
// trail). proper-lockfile does the locking: a `.lock` folder made with mkdir, kept fresh while held,
// taken over once untouched for staleMs. Beside it, `.lock.holder` names the holder (host, pid, token
// and the folder's identity), which adds what proper-lockfile lacks: a lock whose holder process on
// this host is gone (killed, crashed) is taken over at once, and stillHeld() proves the lock is ours.
import crypto from 'node:crypto';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import lockfile from 'proper-lockfile';
import { AuditError } from './audit-entry';
import { processAlive } from '../common/process-alive';

export interface FileLockOptions {
  /**
   * A lock untouched for this long is taken over: its holder crashed or hung. Holders touch it every
   * staleMs / 3, so only a process stalled that long loses it. Default 10 000; proper-lockfile makes
   * anything below 2 000 into 2 000 (and touches at most once a second).
   */
  staleMs?: number;
  /** Give up waiting after this long. Default 60 000. */
  timeoutMs?: number;
}

/** What `.lock.holder` records. ino + birthtime tell this `.lock` folder from a later one of the name. */
interface Holder {
  pid: number;
  host: string;
  token: string;
  ino: number;
  birthtimeMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const holderPathOf = (lockPath: string) => `${lockPath}.holder`;

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.pid === 'number' &&
      typeof h.host === 'string' &&
      typeof h.token === 'string' &&
      typeof h.ino === 'number' &&
      typeof h.birthtimeMs === 'number'
      ? (h as Holder)
      : undefined;
  } catch {
    return undefined; // still being written, or garbage: the lock is judged by its age alone
  }
}

function sameFolder(st: Stats, h: Pick<Holder, 'ino' | 'birthtimeMs'>): boolean {
  return st.ino === h.ino && st.birthtimeMs === h.birthtimeMs;
}

async function readHolder(lockPath: string): Promise<Holder | undefined> {
  return parseHolder(await fs.readFile(holderPathOf(lockPath), 'utf8').catch(() => ''));
}

// Locks this process has acquired, for tests and metrics (group commit takes one per group).
let acquired = 0;

export class FileLock {
  /** How many locks this process has acquired so far. */
  static get acquisitions(): number {
    return acquired;
  }

  /** Use FileLock.acquire; public only for tryLock below. */
  constructor(
    readonly path: string,
    private readonly holder: Holder,
    /** set by proper-lockfile when its heartbeat finds the folder changed or gone */
    private readonly state: { compromised: boolean },
    private readonly releaseFolder: () => Promise<void>,
  ) {}

  static async acquire(lockPath: string, options: FileLockOptions = {}): Promise<FileLock> {
    const staleMs = options.staleMs ?? 10_000;
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (let attempt = 0; ; attempt++) {
      const lock = await tryLock(lockPath, staleMs);
      if (lock) {
        acquired++;
        return lock;
      }
      if (await takeOverIfHolderDied(lockPath)) continue;
      if (Date.now() > deadline) {
        throw new AuditError(`timed out waiting for lock ${lockPath}`);
      }
      // Jittered exponential backoff, capped low: holders keep the lock for a few fsyncs only.
      await sleep(Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
    }
  }

  /**
   * Whether the lock is still ours: proper-lockfile saw no takeover, `.lock` is the folder we made and
   * the holder file names our token. It is not if a stall let another process take it over.
   */
  async stillHeld(): Promise<boolean> {
    if (this.state.compromised) return false;
    const [st, holder] = await Promise.all([
      fs.stat(this.path).catch(() => undefined),
      readHolder(this.path),
    ]);
    return st !== undefined && sameFolder(st, this.holder) && holder?.token === this.holder.token;
  }

  async release(): Promise<void> {
    // Never remove a lock another process has taken over meanwhile. (proper-lockfile's heartbeat for
    // a lock lost that way stops by itself when it finds the folder is not the one it touched.)
    if (!(await this.stillHeld())) return;
    await fs.unlink(holderPathOf(this.path)).catch(() => undefined);
    await this.releaseFolder().catch(() => undefined);
  }
}

/** One attempt: the lock, or undefined while another holds it. */
async function tryLock(lockPath: string, staleMs: number): Promise<FileLock | undefined> {
  const state = { compromised: false };
  let releaseFolder: () => Promise<void>;
  try {
    releaseFolder = await lockfile.lock(lockPath, {
      lockfilePath: lockPath,
      realpath: false, // the lock folder is the only file involved
      stale: staleMs,
      update: staleMs / 3,
      retries: 0, // waiting is done here, between checks for a dead holder
      // The default throws from a timer; a lost lock is noticed by stillHeld() instead.
      onCompromised: () => {
        state.compromised = true;
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
    throw new AuditError(`cannot create lock ${lockPath}`, { cause: err });
  }
  try {
    const st = await fs.stat(lockPath);
    const holder: Holder = {
      pid: process.pid,
      host: os.hostname(),
      token: crypto.randomBytes(12).toString('hex'),
      ino: st.ino,
      birthtimeMs: st.birthtimeMs,
    };
    await fs.writeFile(holderPathOf(lockPath), JSON.stringify(holder));
    return new FileLock(lockPath, holder, state, releaseFolder);
  } catch (err) {
    await releaseFolder().catch(() => undefined);
    throw new AuditError(`cannot write lock holder ${holderPathOf(lockPath)}`, { cause: err });
  }
}

/**
 * Removes the lock if its holder file names a process of this host that no longer exists and the very
 * `.lock` folder that process made (a later folder of the name has another birth time, even when it
 * reuses the inode). Returns true when the caller should try to lock again at once.
 */
async function takeOverIfHolderDied(lockPath: string): Promise<boolean> {
  let st: Stats;
  try {
    st = await fs.stat(lockPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true; // released meanwhile
    throw new AuditError(`cannot read lock ${lockPath}`, { cause: err });
  }
  const holder = await readHolder(lockPath);
  const dead =
    holder !== undefined &&
    st.birthtimeMs > 0 && // a file system without birth times: judged by age alone
    sameFolder(st, holder) &&
    holder.host === os.hostname() &&
    holder.pid !== process.pid &&
    !processAlive(holder.pid);
  if (!dead) return false;
  // Move the folder aside rather than remove it: rename is atomic, so of several processes that judged
  // it dead only one moves it, and that one checks it moved the folder it judged and not a fresh lock
  // made in between (which it puts back; its holder's stillHeld() fails if that no longer works).
  const aside = `${lockPath}.dead.${process.pid}.${crypto.randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw new AuditError(`cannot take over the lock ${lockPath} of dead process ${holder.pid}`, {
      cause: err,
    });
  }
  const moved = await fs.stat(aside);
  if (!sameFolder(moved, holder)) await fs.rename(aside, lockPath).catch(() => undefined);
  await fs.rm(aside, { recursive: true, force: true });
  return true;
}
