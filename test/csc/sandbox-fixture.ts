// Test fixture for the CSC part: one provisioned sandbox data folder per test file, sandboxes started
// on it with the options a test needs (TOTP period 1 s, on a clock that SAD managers given `clock`
// move forward instead of waiting out steps; optionally all its lifetimes on a ManualClock), and
// clients, facts and key factors read from its secret files.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import {
  startSandbox,
  type SandboxCredential,
  type SandboxHandle,
  type SandboxOptions,
} from '../../src/sandbox';
import { CscClient, type CscClientOptions, type KeyFactors } from '../../src/csc';
import { TestClock, type FixtureClock } from '../sandbox/sandbox-fixture';

export const silent = pino({ level: 'silent' });

export interface Fixture {
  sandbox: SandboxHandle;
  /** The sandbox's TOTP clock (and its clock of lifetimes too, when one was given): a SadManager given
   * it as `clock` skips TOTP waits instead of sleeping. */
  clock: FixtureClock;
  credential(id: string): SandboxCredential;
  clientFor(credentialId: string, overrides?: Partial<CscClientOptions>): Promise<CscClient>;
  factorsFor(credentialId: string): () => Promise<KeyFactors>;
  close(): Promise<void>;
}

/** A temp data folder for a whole test file; remove it with `fs.rm` in `after`. */
export function makeDataDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'csc-test-'));
}

/** The sandbox's options, and `clock`: given, it drives every clock of the sandbox (tokens, SADs,
 * lockouts and TOTP; see ManualClock); absent, the sandbox keeps real time and a TestClock for TOTP. */
export type FixtureOptions = Omit<SandboxOptions, 'dataDir'> & { clock?: FixtureClock };

export async function startFixture(dataDir: string, options: FixtureOptions = {}): Promise<Fixture> {
  const { clock: given, ...sandboxOptions } = options;
  const clock = given ?? new TestClock();
  const sandbox = await startSandbox({
    dataDir,
    port: 0,
    logger: silent,
    totpPeriodSec: 1,
    totpNow: clock.now,
    ...(given === undefined ? {} : { now: given.now }),
    ...sandboxOptions,
  });
  const credential = (id: string) => {
    const c = sandbox.credentials.find((x) => x.credentialId === id);
    if (!c) throw new Error(`sandbox has no credential ${id}`);
    return c;
  };
  const read = async (file: string) => (await fs.readFile(file, 'utf8')).trim();
  return {
    sandbox,
    clock,
    credential,
    async clientFor(credentialId, overrides = {}) {
      const c = credential(credentialId);
      return new CscClient({
        baseUrl: sandbox.url,
        auth: {
          kind: 'client_credentials',
          clientId: c.clientId,
          clientSecret: await read(c.clientSecretFile),
        },
        timeoutMs: 5000,
        ...overrides,
      });
    },
    factorsFor(credentialId) {
      const c = credential(credentialId);
      return async () => ({
        pin: await read(c.pinFile),
        totpSecret: await read(c.totpSecretFile),
        totpPeriod: c.totpPeriodSec,
      });
    },
    close: () => sandbox.close(),
  };
}
