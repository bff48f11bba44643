// `sealer approve` as an approver runs it: at a prompt (PIN and OTP piped in, never on argv), and on
// the provider's page in headless Chromium (the URL the command prints, a real redirect back to the
// command's loopback listener). `sealer runs` (in this process) then shows the parked approvals; the
// audit trail has them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { totpCode } from '../../src/csc';
import { auditDir, listAuditFiles } from '../../src/outbox';
import { addRunCounts, markAwaiting } from '../../src/queue';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { tempDir } from '../helpers/temp-dir';
import { dumpPrefix, testRedis } from '../helpers/test-redis';
import { leaks } from '../helpers/secrets';
import { CHROMIUM, launchChromium } from '../helpers/chromium';
import { sandboxSecret, sandboxSecretsDir, startTestSandbox, writeJobFile } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test(
  'approve at a prompt, then on the provider page in Chromium; runs shows the approval',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, redis, prefix } = await testRedis();
    // The sandbox checks TOTP codes on a clock this test moves, so a code cannot go stale while a CLI
    // child starts (2 s under load, twice the 1-second step); the test steps it on between approvals.
    let totpTime = Date.now();
    const sandbox = await startTestSandbox(dir, { totpNow: () => totpTime });
    await writeJobFile(path.join(dir, 'jobs'), {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-rsa',
      providerUrl: sandbox.url,
      secretsDir: sandboxSecretsDir(dir, 'sakura'),
      export: { folder: '../inbox' },
      signing: { custody: { mode: 'approval', via: 'oauth2code', kek: 'env:TEST_KEK' } },
    });
    const env = {
      ...process.env,
      REDIS_URL: url,
      SEALER_PREFIX: prefix,
      TEST_KEK: crypto.randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
    };
    const pin = await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.pin');
    const totp = await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.totp');
    const jobsFlag = ['--jobs', path.join(dir, 'jobs')];

    // 1. At a prompt: the answers come on stdin, one per line.
    const prompt = spawn(
      process.execPath,
      [CLI, 'approve', '--tenant', 'sakura', '--count', '5', '--prompt', '--approver', 'keiko', ...jobsFlag],
      { env, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    prompt.stdout.on('data', (d) => (out += d));
    prompt.stderr.on('data', (d) => (err += d));
    prompt.stdin.end(`${pin}\n${totpCode(totp, { period: 1, now: totpTime })}\n`);
    const code = await new Promise<number | null>((resolve) => prompt.once('exit', resolve));
    assert.equal(code, 0, err);
    assert.match(
      out,
      /^approved: 5 seals for tenant sakura, credential sakura-eseal-rsa, via prompt by keiko, until \S+Z \(approval [0-9a-f]{16}\)$/m,
    );

    const runs = await sealerInProcess(['runs', ...jobsFlag], env);
    assert.match(runs.stdout, /approval sakura\/sakura-eseal-rsa via prompt by keiko: 5 of 5 left, until /);
    assert.match(runs.stdout, /runs: 0 shown, 1 approval\(s\) parked/);

    // 2. On the provider's page, in a real browser.
    if (!existsSync(CHROMIUM)) {
      process.stderr.write(`# ${CHROMIUM} absent: the browser half of this test did not run\n`);
      return;
    }
    totpTime += 1000; // the next TOTP step: a code is accepted once
    const page = spawn(
      process.execPath,
      [CLI, 'approve', '--tenant', 'sakura', '--count', '7', ...jobsFlag],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let pageOut = '';
    let pageErr = '';
    page.stderr.on('data', (d) => (pageErr += d));
    const approvalUrl = await new Promise<string>((resolve, reject) => {
      page.stdout.on('data', (d) => {
        pageOut += d;
        const m = /^(http\S+oauth2\/authorize\S+)$/m.exec(pageOut);
        if (m) resolve(m[1]!);
      });
      page.once('exit', (c) => reject(new Error(`approve exited ${c} before printing a URL: ${pageErr}`)));
    });
    const exited = new Promise<number | null>((resolve) => page.once('exit', resolve));
    after(() => page.kill('SIGKILL'));
    const browser = await launchChromium();
    try {
      const tab = await (await browser.newContext()).newPage();
      await tab.goto(approvalUrl);
      assert.equal(await tab.textContent('#num-signatures'), '7');
      await tab.fill('#approver', 'hanako@sakura.example');
      await tab.fill('#pin', pin);
      await tab.fill('#otp', totpCode(totp, { period: 1, now: totpTime }));
      await Promise.all([tab.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/), tab.click('#approve')]);
    } finally {
      await browser.close();
    }
    assert.equal(await exited, 0, pageErr);
    assert.match(
      pageOut,
      /^approved: 7 seals for tenant sakura, credential sakura-eseal-rsa, via oauth2code by hanako@sakura\.example, until \S+ \(approval [0-9a-f]{16}\); the earlier approval's 5 unused seals are dropped$/m,
    );
    const after2 = await sealerInProcess(['runs', ...jobsFlag], env);
    assert.match(
      after2.stdout,
      /approval sakura\/sakura-eseal-rsa via oauth2code by hanako@sakura\.example: 7 of 7 left/,
    );

    // Both approvals are in the audit trail; no secret is in Redis or in what the commands printed.
    const files = await listAuditFiles(auditDir(path.join(dir, 'outbox'), 'sakura'));
    const audit = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).join('');
    assert.deepEqual(
      audit
        .trim()
        .split('\n')
        .map((l) => {
          const e = JSON.parse(l) as { custody: string; approvedBy?: string };
          return `${e.custody} by ${e.approvedBy}`;
        }),
      // who approved: as told at the prompt, and as the provider's page reported
      ['approval (prompt) by keiko', 'approval (oauth2code) by hanako@sakura.example'],
    );
    const seen = [
      out,
      err,
      pageOut,
      pageErr,
      runs.stdout,
      runs.logs,
      after2.stdout,
      after2.logs,
      audit,
      await dumpPrefix(redis, prefix),
    ].join('\n');
    for (const secret of [pin, totp, env.TEST_KEK, ...sandbox.issuedSecrets()]) {
      assert.ok(!leaks(seen, secret), 'a secret was printed, logged or stored in the clear');
    }
  },
);

test(
  'runs shows the invoices awaiting approval per run and in its summary line',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url, redis, prefix } = await testRedis();
    const dir = await tempDir();
    await fs.mkdir(path.join(dir, 'jobs'));
    await addRunCounts(
      redis,
      prefix,
      'sakura-nightly-20261130-020000-000',
      { rows: 5, enqueued: 5, sealed: 2 },
      {
        state: 'produced',
        startedAt: '2026-11-30T02:00:00.000Z',
      },
    );
    for (const id of ['a', 'b', 'c'])
      await markAwaiting(redis, prefix, 'sakura-nightly-20261130-020000-000', id, true);
    await markAwaiting(redis, prefix, 'sakura-nightly-20261130-020000-000', 'c', false);
    const r = await sealerInProcess(['runs', '--jobs', path.join(dir, 'jobs')], {
      REDIS_URL: url,
      SEALER_PREFIX: prefix,
    });
    assert.match(
      r.stdout,
      /^sakura-nightly-20261130-020000-000 \(sealing\): 5 enqueued, 2 sealed, 0 already sealed, 0 failed, 0 rejected; awaiting approval: 2 invoices$/m,
    );
    assert.match(r.stdout, /^runs: 1 shown, 0 approval\(s\) parked, awaiting approval: 2 invoices$/m);
  },
);
