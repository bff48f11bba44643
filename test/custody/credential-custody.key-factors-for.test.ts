// What a job's signing.custody gives a worker, now that custody answers it: factors from secret
// references or decrypted from the vault, none under approval custody (the tenant keeps them), and
// a pre-flight check that names a wrong key without showing any secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  approvalSourceFor,
  checkCustody,
  FactorVault,
  FactorVaultError,
  keyFactorsFor,
} from '../../src/custody';
import { JobConfigError, loadJobs, type JobDefinition } from '../../src/jobs';
import { writeJobFile } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const PIN = '731904';
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DP';
const TOTP = { digits: 6, periodSec: 30, algorithm: 'SHA1' as const };

async function jobWith(dir: string, custody: Record<string, unknown>, signing = {}): Promise<JobDefinition> {
  const jobsDir = path.join(dir, 'jobs');
  await writeJobFile(jobsDir, {
    tenant: 'bco',
    credentialId: 'bco-eseal',
    providerUrl: 'https://provider.invalid/csc/v2',
    secretsDir: path.join(dir, 'secrets'),
    signing: { custody, totp: TOTP, ...signing },
  });
  const [job] = await loadJobs(jobsDir);
  assert.ok(job);
  return job;
}

test(
  'keyFactorsFor reads provider-held factors from the vault and checkCustody refuses a wrong key',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const kek = crypto.randomBytes(32);
    const env = { SEALER_KEK: kek.toString('hex') };
    const job = await jobWith(dir, { mode: 'provider-held', vault: '../vault', kek: 'env:SEALER_KEK' });
    await new FactorVault(job.factorVaultDir!, kek).store('bco', 'bco-eseal', {
      pin: PIN,
      totpSecret: TOTP_SECRET,
      totp: TOTP,
    });

    assert.deepEqual(await keyFactorsFor(job, env), {
      pin: PIN,
      totpSecret: TOTP_SECRET,
      totpDigits: 6,
      totpPeriod: 30,
      totpAlgorithm: 'SHA1',
    });
    await checkCustody(job, env);
    assert.equal(await approvalSourceFor(job, undefined, env, () => undefined), undefined);

    const wrong = { SEALER_KEK: crypto.randomBytes(32).toString('hex') };
    await assert.rejects(
      () => checkCustody(job, wrong),
      (err: Error) => {
        assert.ok(err instanceof FactorVaultError, String(err));
        assert.match(err.message, /tenant bco/);
        for (const secret of [PIN, TOTP_SECRET, kek.toString('hex'), wrong.SEALER_KEK]) {
          assert.ok(!err.message.includes(secret), 'the refusal shows a secret');
        }
        return true;
      },
    );
  },
);

test(
  'keyFactorsFor resolves secret references, and refuses under approval custody',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    await fs.mkdir(path.join(dir, 'secrets'));
    await fs.writeFile(path.join(dir, 'secrets', 'pin'), `${PIN}\n`, { mode: 0o600 });
    const refs = await jobWith(
      dir,
      { mode: 'secret-refs' },
      { pin: `file:${path.join(dir, 'secrets', 'pin')}` },
    );
    assert.deepEqual(await keyFactorsFor(refs, {}), {
      pin: PIN,
      totpSecret: undefined,
      totpDigits: 6,
      totpPeriod: 30,
      totpAlgorithm: 'SHA1',
    });

    const other = await tempDir();
    const approval = await jobWith(other, { mode: 'approval', via: 'prompt', kek: 'env:SEALER_KEK' });
    await assert.rejects(
      () => keyFactorsFor(approval, {}),
      (err: Error) => {
        assert.ok(err instanceof JobConfigError, String(err));
        assert.match(err.message, /keeps its factors \(custody approval\)/);
        return true;
      },
    );
    await assert.rejects(
      () => approvalSourceFor(approval, undefined, {}, () => undefined),
      /custody approval needs the approvals store/,
    );
  },
);
