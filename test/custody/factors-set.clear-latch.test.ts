// `sealer factors set` stores new factors and so lifts the latch a refusal of the old ones set: every
// worker process may authorise that tenant's credential again (at every provider URL), while other
// tenants' latches stay. Run as an operator runs it: the CLI, factors on stdin, the workers' Redis prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { listCredentialLatches, RedisAuthorisationGuard } from '../../src/custody';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function sealer(
  args: string[],
  env: NodeJS.ProcessEnv,
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test(
  'factors set clears the credential latch for every worker process, and only that one',
  { timeout: 120_000 },
  async () => {
    const { url, redis, prefix } = await testRedis();
    const dir = await tempDir();
    const jobs = path.join(dir, 'jobs');
    await fs.mkdir(jobs);
    const job = {
      name: 'bco-nightly',
      cron: '0 2 * * *',
      tenant: 'bco',
      export: {
        folder: '../inbox/bco',
        columns: {
          invoiceNumber: '請求書番号',
          customerName: '取引先名',
          amount: '請求金額',
          pdfPath: 'PDFファイル',
        },
      },
      signing: {
        clientId: 'bco-app',
        clientSecret: 'env:BCO_CLIENT_SECRET',
        credentialId: 'bco-eseal',
        custody: { mode: 'provider-held', vault: '../vault' },
      },
      outbox: '../outbox',
    };
    await fs.writeFile(path.join(jobs, 'bco-nightly.json'), JSON.stringify(job));
    const latch = {
      reason: 'HTTP 400 invalid_pin: The PIN is invalid',
      status: 400,
      error: 'invalid_pin',
      at: 1,
    };
    const guard = (providerUrl: string, tenant: string) =>
      new RedisAuthorisationGuard({
        redis,
        prefix,
        credential: { providerUrl, tenant, credentialId: 'bco-eseal' },
      });
    await guard('https://a.example/csc/v2', 'bco').latch(latch);
    await guard('https://b.example/csc/v2', 'bco').latch(latch);
    await guard('https://a.example/csc/v2', 'other').latch(latch);

    const run = await sealer(
      ['factors', 'set', '--tenant', 'bco', '--jobs', jobs],
      { SEALER_KEK: crypto.randomBytes(32).toString('hex'), REDIS_URL: url, SEALER_PREFIX: prefix },
      '582046\nKRUGS4ZANFZSAYJAORSXG5BAONSWG4TF\n',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /credential bco-eseal of tenant bco at https:\/\/a\.example\/csc\/v2 may be authorised again \(stopped after HTTP 400 invalid_pin: The PIN is invalid\)/,
    );
    assert.match(run.stdout, /at https:\/\/b\.example\/csc\/v2 may be authorised again/);
    assert.deepEqual(
      (await listCredentialLatches(redis, prefix)).map((l) => [l.tenant, l.providerUrl]),
      [['other', 'https://a.example/csc/v2']],
      "another tenant's latch stays",
    );
    assert.ok(!run.stdout.includes('582046') && !run.stderr.includes('582046'), 'no PIN in the output');
  },
);
