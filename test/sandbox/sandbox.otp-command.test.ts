// `sealer sandbox otp <credential>` prints the code the sandbox accepts right now: a person approving by
// hand on the sandbox page types it, and the sandbox's own credentials/authorize takes it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { authorize, credential, getToken, startFixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test(
  'sandbox otp prints a code credentials/authorize accepts, and names a credential it does not know',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The real clock and a 30 s step (the default a person meets): the CLI computes the code in its
    // own process, so both must read the same time; one step either side is accepted.
    const fx = await startFixture({ totpPeriodSec: 30, totpNow: Date.now });
    after(() => fx.close());
    const cred = credential(fx.sandbox, 'fuji-eseal-ec');
    const { stdout, stderr } = await run(process.execPath, [
      CLI,
      'sandbox',
      'otp',
      'fuji-eseal-ec',
      '--data-dir',
      fx.dataDir,
      '--totp-period',
      '30',
    ]);
    assert.match(stdout, /^\d{6}\n$/);
    assert.match(stderr, /fuji-eseal-ec \(tenant fuji\), valid for \d+ more s/);
    const token = await getToken(fx.sandbox, cred.clientId);
    const res = await authorize(fx.sandbox, token, cred, {}, { otp: stdout.trim() });
    assert.equal(res.status, 200, JSON.stringify(res.body));

    const unknown = await run(process.execPath, [
      CLI,
      'sandbox',
      'otp',
      'nobody',
      '--data-dir',
      fx.dataDir,
    ]).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    assert.equal(unknown?.code, 1);
    assert.match(unknown?.stderr ?? '', /credential nobody has no TOTP secret/);
  },
);
