// `sealer bench` with a small N, as CI runs it: every sealed file of the worker's night and of the naive
// one verifies (the product's verifier with the sandbox root, and poppler's pdfsig), the naive mode
// spends one authorisation and one signHash per invoice, and the figures the issue asks for are printed
// and written. Never a speed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { verifySealedPdf } from '../../src/pades';
import type { BenchFigures } from '../../src/demo/bench';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);

async function pdfsIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.pdf')) out.push(path.join(entry.parentPath, entry.name));
  }
  return out.sort();
}

test(
  'bench with two P-256 workers and a naive pass: every output verifies, naive is one authorize + one signHash each',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url } = await testRedis();
    const work = await tempDir('sealer-test-bench-');
    const json = path.join(work, 'figures.json');
    const { stdout } = await execFileP(
      process.execPath,
      [
        CLI,
        'bench',
        '--invoices',
        '24',
        '--batch-size',
        '5',
        '--key',
        'ec',
        '--workers',
        '2',
        '--concurrency',
        '16',
        // 1 s steps: the naive pass waits for a fresh step per invoice.
        '--totp-period',
        '1',
        '--naive',
        '2',
        '--verify',
        '--work-dir',
        work,
        '--json',
        json,
      ],
      { env: { ...process.env, REDIS_URL: url } },
    );
    const figures = JSON.parse(await fs.readFile(json, 'utf8')) as BenchFigures;
    assert.equal(figures.credential.credentialId, 'bench-eseal-ec');
    assert.equal(figures.credential.keyType, 'ecdsa-p256');
    const [night] = figures.nights;
    const naive = figures.naive!;
    assert.equal(night!.sealed, 24);
    assert.equal(night!.workers, 2);
    assert.equal(night!.maxRssKb.workers.length, 2);
    assert.ok(night!.signHashCalls >= 5, `${night!.signHashCalls} signHash calls for 24 hashes of 5`);
    assert.equal(night!.stages.prepareMs.count, 24, 'stages of every sealed invoice');
    assert.equal(night!.batchMs.count, night!.signHashCalls);
    assert.equal(naive.sealed, 2);
    assert.equal(naive.authorisations, 2);
    assert.equal(naive.signHashCalls, 2);
    assert.deepEqual(night!.verified, { valid: 24, files: 24, problems: [] });

    // The outputs themselves, checked here rather than taken from the bench's word.
    const root = path.join(work, 'sandbox', 'ca', 'root.pem');
    const rootDer = new crypto.X509Certificate(await fs.readFile(root)).raw;
    const nss = await nssDbWithRoot(root);
    for (const [outbox, count] of [
      ['outbox-bb', 24],
      ['outbox-naive', 2],
    ] as const) {
      const files = await pdfsIn(path.join(work, outbox));
      assert.equal(files.length, count, outbox);
      for (const file of files) {
        const checks = await verifySealedPdf(await fs.readFile(file), { trustedRootsDer: [rootDer] });
        assert.equal(checks.length, 1, file);
        assert.ok(checks[0]!.valid && checks[0]!.chainTrusted, `${file}: ${checks[0]!.problems.join('; ')}`);
        const said = await pdfsig(file, nss);
        assert.match(said, /Signature Validation: Signature is Valid\./, `${file}: ${said}`);
      }
    }

    for (const line of [
      /^sealed B-B {2}: 24 invoices in /m,
      /^ {2}authorisation ceiling: multisign 100000 \/ 1 s TOTP step = 100000\.0 invoices\/s; reached [\d.]+\/s = [\d.]+ % of it/m,
      /^ {2}CPU per invoice: workers [\d.]+ ms, bench process/m,
      /^ {2}stages per invoice, wall µs mean \/ p50 \/ p99 .*prepare \d+ \/ \d+ \/ \d+; signHash wait .*; finish .*; deliver .*/m,
      /^ {2}signHash batches: \d+ calls, [\d.]+ hashes\/call, latency p50 [\d.]+ ms, p99 [\d.]+ ms$/m,
      /^ {2}peak RSS: workers \d+ MB, \d+ MB \(\d+ MB, \d+ MB until 95 % was sealed\), bench \d+ MB, sandbox \d+ MB; Redis used_memory peak/m,
      /^ {2}verified: 24 of 24 sealed files valid/m,
      /^naive: {4}2 invoices in [\d.]+ s = [\d.]+ invoices\/s, one authorize \+ one signHash per invoice/m,
      /^bench: 24 sealed, \d+ invoices\/s, [\d.]+ CPU ms\/invoice, floor ratio [\d.]+x$/m,
      /^worker\/naive: \d+x /m,
    ]) {
      assert.match(stdout, line);
    }
  },
);

test(
  'bench --input data renders a data export in the night: every output verifies',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url } = await testRedis();
    const work = await tempDir('sealer-test-bench-data-');
    const json = path.join(work, 'figures.json');
    const { stdout } = await execFileP(
      process.execPath,
      [
        CLI,
        'bench',
        '--input',
        'data',
        '--invoices',
        '12',
        '--batch-size',
        '5',
        '--key',
        'ec',
        '--concurrency',
        '8',
      ].concat(['--totp-period', '1', '--naive', '0', '--verify', '--work-dir', work, '--json', json]),
      { env: { ...process.env, REDIS_URL: url } },
    );
    const figures = JSON.parse(await fs.readFile(json, 'utf8')) as BenchFigures;
    const [night] = figures.nights;
    assert.equal(night!.input, 'data');
    assert.equal(night!.sealed, 12);
    assert.deepEqual(night!.verified, { valid: 12, files: 12, problems: [] });
    // A rendered A4 invoice with its font subsets and the seal: tens of KB, nothing "added" to an input.
    assert.ok(night!.sealedBytesPerInvoice > 20_000, String(night!.sealedBytesPerInvoice));
    assert.equal(night!.bytesAddedPerInvoice, 0);
    assert.match(stdout, /^sealed B-B {2}: 12 invoices in .*rendered from data, [\d.]+ KB\/sealed invoice$/m);
    assert.match(stdout, /^bench: 12 sealed, \d+ invoices\/s/m);
  },
);
