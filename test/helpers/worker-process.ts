// `sealer work` as a real child process (what crash, outage and scale-out tests kill, stop and count),
// logging to a file, and a poll that waits on a condition rather than on the clock.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after } from 'node:test';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** resolves with the exit code (null when killed by a signal) and the time it exited */
  exited: Promise<{ code: number | null; at: number }>;
  logFile: string;
}

export async function spawnWorker(o: {
  jobsDir: string;
  redisUrl: string;
  prefix: string;
  logFile: string;
  /** flags after `work --jobs DIR` */
  args?: string[];
}): Promise<WorkerProcess> {
  const log = await fs.open(o.logFile, 'w');
  const child = spawn(process.execPath, [CLI, 'work', '--jobs', o.jobsDir, ...(o.args ?? [])], {
    env: { ...process.env, REDIS_URL: o.redisUrl, SEALER_PREFIX: o.prefix, LOG_LEVEL: 'info' },
    stdio: ['ignore', log.fd, log.fd],
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => {
      log.close().catch(() => undefined);
      resolve({ code, at: Date.now() });
    }),
  );
  after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited, logFile: o.logFile };
}

/** Resolves once `check` holds (a failing check counts as not yet); rejects naming `what` after `ms`. */
export async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
