// The `sealer` command as a user runs it: help and flag errors (in-process, through run(argv, io): the
// same parser, without a process start per command), enqueue + work as separate processes against real
// Redis and the sandbox, and verify (in-process; verify.command.test.ts runs it as a process) on what
// they sealed and on a tampered file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { readManifest } from '../../src/outbox';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);

async function sealer(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('every command has --help that says what it does', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const command of [
    'demo',
    'enqueue',
    'work',
    'schedule',
    'sandbox',
    'verify',
    'bench',
    'approve',
    'runs',
    'factors set',
    'factors rotate-key',
    'factors list',
    'audit verify',
  ]) {
    const r = await sealerInProcess([...command.split(' '), '--help']);
    assert.equal(r.code, 0, command);
    assert.match(r.stdout, new RegExp(`Usage: sealer ${command}`));
    assert.ok(r.stdout.split('\n')[2]!.length > 20, `${command} has a description`);
  }
});

test(
  'a wrong flag or a missing argument is a one-line error and a non-zero exit',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const args of [
      ['work', '--bogus'],
      ['enqueue'],
      ['verify'],
      ['bench', '--invoices', 'many'],
      ['approve', '--tenant', 'sakura'],
      ['approve', '--tenant', 'sakura', '--count', '0'],
      ['nosuch'],
    ]) {
      const r = await sealerInProcess(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /error/);
    }
  },
);

test(
  'enqueue and work as separate processes seal an export; verify accepts it and refuses a flipped byte',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, prefix } = await testRedis();
    const sandbox = await startSandbox({
      totpPeriodSec: 1,
      dataDir: path.join(dir, 'sandbox'),
      logger: pino({ level: 'silent' }),
    });
    after(() => sandbox.close());
    await writeSampleExport({
      dir: path.join(dir, 'inbox'),
      tenantName: 'Fuji Denki K.K.',
      invoicePrefix: 'FJ',
      count: 12,
      encoding: 'utf8',
    });
    const secrets = path.join(dir, 'sandbox', 'secrets', 'fuji');
    await fs.mkdir(path.join(dir, 'jobs'));
    await fs.writeFile(
      path.join(dir, 'jobs', 'fuji.json'),
      JSON.stringify({
        name: 'fuji-nightly',
        cron: '30 2 * * *',
        tenant: 'fuji',
        export: { folder: '../inbox', columns: SAMPLE_COLUMNS },
        signing: {
          clientId: 'fuji-app',
          clientSecret: `file:${secrets}/client-secret`,
          credentialId: 'fuji-eseal-ec',
          pin: `file:${secrets}/fuji-eseal-ec.pin`,
          totpSecret: `file:${secrets}/fuji-eseal-ec.totp`,
          totp: { periodSec: 1 },
          batchSize: 5,
        },
        outbox: '../outbox',
      }),
    );
    const env = {
      REDIS_URL: url,
      SEALER_PREFIX: prefix,
      SEALER_PROVIDER_URL: sandbox.url,
      LOG_LEVEL: 'warn',
    };
    const enqueued = await sealer(['enqueue', 'fuji-nightly', '--jobs', path.join(dir, 'jobs')], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    assert.match(enqueued.stdout, /12 rows: 12 enqueued, 0 already queued, 0 already sealed, 0 rejected/);
    // Piped, as here: no carriage-return redraws of the rows-read count.
    assert.ok(!enqueued.stdout.includes('\r') && !enqueued.stderr.includes('\r'), enqueued.stderr);

    const worker = spawn(
      process.execPath,
      [CLI, 'work', '--jobs', path.join(dir, 'jobs'), '--concurrency', '10'],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    worker.stderr.on('data', (d) => (stderr += d));
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((resolve) =>
      worker.once('exit', (code) => resolve((exitCode = code))),
    );
    after(() => worker.kill('SIGKILL'));
    const outDir = path.join(dir, 'outbox', 'fuji');
    // Polled until all 12 are sealed, however slow the machine: the run's --test-timeout bounds it, and a
    // worker that died is reported at once.
    let manifestFile: string;
    for (;;) {
      const days = (await fs.readdir(outDir).catch(() => [] as string[])).filter((d) => !d.startsWith('.'));
      manifestFile = days[0] ? path.join(outDir, days[0], 'manifest.csv') : '';
      const rows = manifestFile ? await readManifest(manifestFile).catch(() => []) : [];
      if (rows.length === 12) break;
      assert.equal(exitCode, undefined, `worker exited after sealing ${rows.length} of 12: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /worker stopped: 12 jobs completed/);

    const sealedDir = path.dirname(manifestFile);
    const files = (await fs.readdir(sealedDir))
      .filter((f) => f.endsWith('.pdf'))
      .map((f) => path.join(sealedDir, f));
    const ok = await sealerInProcess(['verify', '--root', sandbox.rootCertPath, ...files]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /12 file\(s\) checked, all valid/);

    // One flipped byte inside the signed range (in the original content) breaks the seal.
    const victim = files[0]!;
    const bytes = await fs.readFile(victim);
    const at = bytes.indexOf('Invoice');
    assert.ok(at > 0);
    bytes[at] = bytes[at]! ^ 0x01;
    await fs.writeFile(victim, bytes);
    const bad = await sealerInProcess(['verify', '--root', sandbox.rootCertPath, victim]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /INVALID/);
  },
);

test(
  'bench seals a small run through a sandbox process and prints the floor ratio',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url } = await testRedis();
    // The naive pass is test/demo/bench.smoke.test.ts's; at the real 30 s step it waits a step per invoice.
    const r = await sealer(['bench', '--invoices', '30', '--batch-size', '7', '--naive', '0'], {
      REDIS_URL: url,
    });
    assert.equal(r.code, 0, r.stderr);
    // At least ceil(30 / 7) calls; a loaded machine may flush a partial batch early and make more.
    const calls = Number(/(\d+) signHash calls/.exec(r.stdout)?.[1]);
    assert.ok(calls >= 5 && calls <= 30, `${calls} signHash calls`);
    assert.match(
      r.stdout,
      /^bench: 30 sealed, \d+ invoices\/s, [\d.]+ CPU ms\/invoice, floor ratio [\d.]+x$/m,
    );
  },
);

test(
  'bench --level seals the same invoices once per level: one TSA call per timestamp, revocation once a night',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url } = await testRedis();
    // 1 s steps: the second night's authorisation waits for a step the first did not use.
    const r = await sealer(
      ['bench', '--invoices', '12', '--level', 'B-T,B-LTA', '--naive', '0', '--totp-period', '1'],
      { REDIS_URL: url },
    );
    assert.equal(r.code, 0, r.stderr);
    // Piped, as here: no progress bar redraws, one progress line per level (stage), then the summary.
    assert.ok(!r.stdout.includes('\r') && !r.stderr.includes('\r'), JSON.stringify(r.stderr));
    for (const level of ['B-T', 'B-LTA']) {
      assert.equal(
        r.stderr.split('\n').filter((l) => l === `sealing ${level}: 12/12 invoices`).length,
        1,
        r.stderr,
      );
    }
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('sealing ')).length, 2, r.stderr);
    // 12 signature timestamps (+ 1 probe that sizes the placeholder); B-LTA adds 12 document timestamps.
    assert.match(r.stdout, /^bench B-T: 12 sealed, .*level B-T, 13 TSA calls, 0 revocation fetches$/m);
    const lta = /^bench B-LTA: 12 sealed, .*level B-LTA, 25 TSA calls, (\d+) revocation fetches$/m.exec(
      r.stdout,
    );
    assert.ok(lta, r.stdout);
    // The signer's and the TSA's certificates, each fetched once for the whole night.
    assert.ok(Number(lta[1]) >= 1 && Number(lta[1]) <= 2, r.stdout);
    assert.match(r.stdout, /^sealed B-LTA: 12 invoices .* KB added\/invoice$/m);
  },
);
