// `sealer` run inside the test's own process, through run(argv, io) from src/cli/main.ts: the same parser
// and command code as the bin, without a process start per call (node, then the command's modules:
// 1 to 2 s of CPU for a command that loads the queue or the PDF code). Each file that uses it keeps a
// real child-process run of the bin for what only a process shows (exit status, output streams).
import { run } from '../../src/cli/main';

export interface InProcessRun {
  /** the exit code the bin would exit with */
  code: number;
  stdout: string;
  stderr: string;
}

export async function sealerInProcess(args: string[]): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  const code = await run(['node', 'sealer', ...args], {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}
