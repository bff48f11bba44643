// `sealer` run inside the test's own process, through run(argv, io) from src/cli/main.ts: the same parser
// and command code as the bin, without a process start per call (node, then the command's modules:
// 1 to 2 s of CPU for a command that loads the queue or the PDF code). Each command still has a test
// that runs the bin as a child process, for what only a process shows (exit status, its own exit).
import { run } from '../../src/cli/main';

export interface InProcessRun {
  /** the exit code the bin would exit with */
  code: number;
  stdout: string;
  stderr: string;
  /** the pino log lines, kept apart as `io.logs` lets a command do */
  logs: string;
}

/**
 * Runs one command line. `env` is set on process.env for the command's run (what a child would get as
 * its environment: SEALER_PREFIX, REDIS_URL, a KEK reference) and put back after; tests in a file run
 * one at a time, so no other test sees it.
 */
export async function sealerInProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  let logs = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(env);
  try {
    const code = await run(['node', 'sealer', ...args], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      logs: { write: (line: string) => (logs += line) },
    });
    return { code, stdout, stderr, logs };
  } finally {
    set(saved);
  }
}
