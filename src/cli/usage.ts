// The ops verbs' exit codes: 0 ok, 1 nothing done or something named was unknown, 2 a usage error.
// Commander exits 1 on a bad flag; scripts running these verbs tell "wrong command line" from "nothing
// to retry" by the code, so their usage errors are raised as 2 (help and --version stay 0).
import { CommanderError, type Command } from 'commander';

export const USAGE_EXIT = 2;

/** Makes `cmd`'s parse errors exit 2; call after the parent's exitOverride (which it replaces). */
export function usageErrorsExit2(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    throw new CommanderError(USAGE_EXIT, err.code, err.message);
  });
}
