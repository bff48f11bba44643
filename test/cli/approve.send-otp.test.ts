// Approval at a prompt for a credential whose OTP is sent to a person (online OTP, credentials/sendOTP):
// the provider is asked to send the code just before the OTP is asked for, the caller is told once,
// and the code that reached the approver's "phone" (the sandbox's outbox-otp file) approves the seals,
// which are parked in Redis. `sealer approve --prompt` says the code was sent before reading it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { approveAtPrompt, ParkedApprovals } from '../../src/custody';
import { loadJobs } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { sandboxSecret, sandboxSecretsDir, startTestSandbox, writeJobFile } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const CREDENTIAL = 'sakura-eseal-rsa';

async function setUp() {
  const dir = await tempDir();
  const { url, redis, prefix } = await testRedis();
  const sandbox = await startTestSandbox(dir, { onlineOtp: [CREDENTIAL] });
  const jobsDir = path.join(dir, 'jobs');
  await writeJobFile(jobsDir, {
    tenant: 'sakura',
    credentialId: CREDENTIAL,
    providerUrl: sandbox.url,
    secretsDir: sandboxSecretsDir(dir, 'sakura'),
    export: { folder: '../inbox' },
    signing: {
      custody: { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' },
      otpDelivery: 'sendOTP',
    },
  });
  const env = { ...process.env, TEST_KEK: crypto.randomBytes(32).toString('hex') };
  const pin = await sandboxSecret(dir, 'sakura', `${CREDENTIAL}.pin`);
  const phone = path.join(dir, 'sandbox', 'outbox-otp', `${CREDENTIAL}.txt`);
  return { dir, url, redis, prefix, jobsDir, env, pin, phone };
}

test(
  'approveAtPrompt sends the online OTP before asking for it and parks the approval',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix, jobsDir, env, pin, phone } = await setUp();
    const [job] = await loadJobs(jobsDir);
    assert.equal(job!.signing.otpDelivery, 'sendOTP');

    const events: string[] = [];
    const result = await approveAtPrompt({
      job: job!,
      count: 4,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      env,
      approvedBy: 'keiko',
      onOtpSent: () => events.push('sent'),
      ask: async (factor) => {
        events.push(`ask ${factor}`);
        if (factor === 'PIN') return pin;
        // The approver reads the code from the phone it was sent to.
        return (await fs.readFile(phone, 'utf8')).trim();
      },
    });
    assert.deepEqual(events, ['ask PIN', 'sent', 'ask OTP']);
    assert.equal(result.via, 'prompt');
    assert.equal(result.numSignatures, 4);

    const status = await new ParkedApprovals(redis, prefix).status('sakura', CREDENTIAL);
    assert.ok(status, 'no approval parked');
    assert.equal(status.via, 'prompt');
    assert.equal(status.approvedBy, 'keiko');
    assert.equal(status.granted, 4);
    assert.equal(status.remaining, 4);
  },
);

test(
  'sealer approve --prompt says the code was sent, then reads it from stdin',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url, redis, prefix, jobsDir, env, pin, phone } = await setUp();
    const child = spawn(
      process.execPath,
      [CLI, 'approve', '--tenant', 'sakura', '--count', '3', '--prompt', '--jobs', jobsDir],
      {
        env: { ...env, REDIS_URL: url, SEALER_PREFIX: prefix, LOG_LEVEL: 'warn' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin.write(`${pin}\n`);
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes("a one-time code was sent to the approver's device")) resolve();
      });
      child.once('exit', (c) => reject(new Error(`approve exited ${c} before sending a code: ${err}`)));
    });
    child.stdin.end(`${(await fs.readFile(phone, 'utf8')).trim()}\n`);
    assert.equal(await exited, 0, err);
    assert.match(
      out,
      /^a one-time code was sent to the approver's device\napproved: 3 seals for tenant sakura, credential sakura-eseal-rsa, via prompt, until \S+Z \(approval [0-9a-f]{16}\)$/m,
    );
    const status = await new ParkedApprovals(redis, prefix).status('sakura', CREDENTIAL);
    assert.equal(status?.granted, 3);
  },
);
