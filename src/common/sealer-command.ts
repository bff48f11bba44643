// How a user runs the `sealer` command from a clone of this repository, for every message that tells them
// to run one. npm does not link a project's own `bin` into its PATH, so `npx sealer` answers "sealer: not
// found" on a fresh clone; `npm run sealer` (package.json's script) works there once it is built, and
// `-s` keeps npm's banner out of the output. The README's blocks use the same words (a test checks).
export const SEALER_INVOCATION = 'npm run -s sealer --';

/** `args` (e.g. "runs --limit 5") as a command line the user can paste. */
export function sealerCommandLine(args: string): string {
  return `${SEALER_INVOCATION} ${args}`;
}
