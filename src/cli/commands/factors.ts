// `sealer factors set | rotate-key | list`: the provider-held custody model's factor vault. The PIN and
// TOTP secret come from a hidden prompt or stdin, never from argv (which other users can read in `ps`),
// and are never printed. What each command does is custody's (src/custody/delegated-factors.ts); here
// the factors are read and the lines printed.
import { listFactorVaults, rotateFactorKey, storeFactors, type CustodyReport } from '../../custody';
import { DEFAULT_PREFIX } from '../../queue';
import { promptHidden, secretReader } from '../secret-input';

const report: CustodyReport = {
  info: (line) => console.log(line),
  warn: (line) => console.error(line),
};

/** The workers' key prefix, whose credential latches new factors clear. */
function workersPrefix(): string {
  return process.env.SEALER_PREFIX ?? DEFAULT_PREFIX;
}

export async function factorsSetCommand(opts: {
  tenant: string;
  credential?: string;
  jobs: string;
}): Promise<void> {
  await storeFactors({
    tenant: opts.tenant,
    credential: opts.credential,
    jobs: opts.jobs,
    prefix: workersPrefix(),
    readFactors,
    report,
  });
}

export async function factorsRotateKeyCommand(opts: {
  tenant?: string;
  jobs: string;
  vault?: string;
  oldKek?: string;
  newKek: string;
}): Promise<void> {
  await rotateFactorKey({
    tenant: opts.tenant,
    jobs: opts.jobs,
    vault: opts.vault,
    oldKek: opts.oldKek,
    newKek: opts.newKek,
    prefix: workersPrefix(),
    report,
  });
}

export async function factorsListCommand(opts: { jobs: string; vault?: string }): Promise<void> {
  await listFactorVaults({ jobs: opts.jobs, vault: opts.vault, report });
}

// ---------------------------------------------------------------------------------------------------
// Reading the factors

/** PIN, then TOTP secret: hidden prompts on a terminal (the PIN twice), else two stdin lines. */
async function readFactors(): Promise<[string, string]> {
  const reader = secretReader();
  try {
    const pin = await reader.ask('PIN');
    // A mistyped PIN would only show at night, as a refusal by the provider: confirm it when typed.
    if (pin && process.stdin.isTTY && (await promptHidden('PIN again')) !== pin) {
      throw new Error('the two PINs differ');
    }
    return [pin, await reader.ask('TOTP secret (Base32)')];
  } catch (err) {
    throw new Error(`${(err as Error).message}; nothing was stored`, { cause: err });
  } finally {
    reader.close();
  }
}
