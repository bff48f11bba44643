// The fault plan as a user writes it: the compact spec string and JSON plans parse into exact rules,
// every mistake is refused naming the item or rule and the field, and `sealer sandbox --faults` takes
// a spec or a .json file, refuses a bad one before it provisions anything, and serves the rules it
// was given on GET /sandbox/faults.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadFaultsArgument, parseFaultPlan, parseFaultSpec, SandboxError } from '../../src/sandbox';
import type { FaultState } from '../../src/sandbox';
import { tempDir } from '../helpers/temp-dir';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);
const TIMEOUT = { timeout: 180_000 };

test(
  'the spec string parses into normalised rules (short names, rates as fractions or %, defaults)',
  TIMEOUT,
  () => {
    const plan = parseFaultSpec(
      ' seed=night-1, signHash:500=0.1 ,signHash:429=5%,authorize:503:2s=0.2,csc:latency:200ms,' +
        'info:latency:50-150ms=0.5,credentials/info:latency:1-2s,signHash:hang=0.01,token:drop,' +
        'signHash:drop:mid=0.02,signHash:missing=0.01,signHash:extra=0.01,signHash:wrong-hash=0.01,' +
        'signHash:corrupt=0.01,authorize:sad-expiry:30s=0.5,authorize:sad-expiry:1.5s:3uses=0.25',
    );
    assert.equal(plan.seed, 'night-1');
    assert.deepEqual(plan.rules, [
      { endpoint: 'signatures/signHash', rate: 0.1, fault: 'status', status: 500 },
      { endpoint: 'signatures/signHash', rate: 0.05, fault: 'status', status: 429, retryAfterSec: 1 },
      { endpoint: 'credentials/authorize', rate: 0.2, fault: 'status', status: 503, retryAfterSec: 2 },
      { endpoint: 'csc', rate: 1, fault: 'latency', minMs: 200, maxMs: 200 },
      { endpoint: 'info', rate: 0.5, fault: 'latency', minMs: 50, maxMs: 150 },
      { endpoint: 'credentials/info', rate: 1, fault: 'latency', minMs: 1000, maxMs: 2000 },
      { endpoint: 'signatures/signHash', rate: 0.01, fault: 'hang' },
      { endpoint: 'oauth2/token', rate: 1, fault: 'drop', when: 'before' },
      { endpoint: 'signatures/signHash', rate: 0.02, fault: 'drop', when: 'mid' },
      { endpoint: 'signatures/signHash', rate: 0.01, fault: 'signatures', mode: 'missing' },
      { endpoint: 'signatures/signHash', rate: 0.01, fault: 'signatures', mode: 'extra' },
      { endpoint: 'signatures/signHash', rate: 0.01, fault: 'signatures', mode: 'wrong-hash' },
      { endpoint: 'signatures/signHash', rate: 0.01, fault: 'signatures', mode: 'corrupt' },
      { endpoint: 'credentials/authorize', rate: 0.5, fault: 'sad-expiry', afterSec: 30 },
      { endpoint: 'credentials/authorize', rate: 0.25, fault: 'sad-expiry', afterSec: 1.5, afterUses: 3 },
    ]);
    assert.deepEqual(parseFaultSpec(''), { rules: [] });
  },
);

test('a JSON plan parses into the same rules, and a parsed plan parses to itself', TIMEOUT, () => {
  const plan = parseFaultPlan({
    seed: 7,
    rules: [
      { endpoint: 'signHash', fault: 'status', status: 503, rate: 0.1, retryAfterSec: 3, max: 5 },
      { endpoint: 'csc', fault: 'latency', ms: 20 },
      { endpoint: 'signatures/signHash', fault: 'latency', minMs: 10, maxMs: 30, rate: 0.5 },
      { endpoint: 'authorize', fault: 'sad-expiry', afterUses: 0 },
    ],
  });
  assert.deepEqual(plan, {
    seed: '7',
    rules: [
      { endpoint: 'signatures/signHash', rate: 0.1, max: 5, fault: 'status', status: 503, retryAfterSec: 3 },
      { endpoint: 'csc', rate: 1, fault: 'latency', minMs: 20, maxMs: 20 },
      { endpoint: 'signatures/signHash', rate: 0.5, fault: 'latency', minMs: 10, maxMs: 30 },
      { endpoint: 'credentials/authorize', rate: 1, fault: 'sad-expiry', afterUses: 0 },
    ],
  });
  assert.deepEqual(parseFaultPlan(plan), plan);
});

test('every mistake in a spec names the item and what is wrong with it', TIMEOUT, () => {
  const cases: [string, RegExp][] = [
    ['signHash:502', /item 1 "signHash:502": unknown fault "502"/],
    ['signHash:500,signHash:drop:middle', /item 2 "signHash:drop:middle": drop takes before, after or mid/],
    ['sign:500', /item 1 "sign:500": unknown endpoint "sign"/],
    ['signHash:500=1.5', /item 1 "signHash:500=1.5": rate must be from 0 to 1/],
    ['signHash:500=often', /rate "often" is not a number/],
    ['signHash:500=0.1=0.2', /one "=" at most/],
    ['signHash', /expected endpoint:fault/],
    ['authorize:missing', /signatures faults apply to signatures\/signHash only/],
    ['signHash:sad-expiry:3uses', /sad-expiry applies to credentials\/authorize only/],
    ['authorize:sad-expiry', /sad-expiry needs a time, a number of uses or both/],
    ['authorize:sad-expiry:soon', /sad-expiry takes a time \(10s, 500ms\) or uses \(3uses\), not "soon"/],
    ['info:latency', /latency needs a duration or a range/],
    ['info:latency:200', /latency needs a duration or a range, e\.g\. .* not "200"/],
    ['info:latency:300-100ms', /latency minMs 300 is above maxMs 100/],
    ['signHash:429:1.5s', /Retry-After must be whole seconds/],
    ['signHash:hang:5s', /hang takes no arguments/],
    ['signHash:500,,info:500', /item 2 "": empty item/],
    ['seed=1,seed=2', /item 2 "seed=2": seed is given twice/],
    [
      'signHash:500=0.6,csc:503=0.3,signHash:drop=0.2',
      /signatures\/signHash add up to 1\.1 \(rules 1, 2, 3\)/,
    ],
  ];
  for (const [spec, message] of cases) {
    assert.throws(
      () => parseFaultSpec(spec),
      (err: unknown) => {
        assert.ok(err instanceof SandboxError, spec);
        assert.match(err.message, message, spec);
        return true;
      },
    );
  }
  // Different endpoints do not add up: 0.6 on signHash and 0.6 on authorize are fine.
  assert.equal(parseFaultSpec('signHash:500=0.6,authorize:500=0.6').rules.length, 2);
});

test('every mistake in a JSON plan names the rule and the field', TIMEOUT, () => {
  const cases: [unknown, RegExp][] = [
    [[], /must be a JSON object with "rules"/],
    [{ rule: [] }, /unknown field "rule"/],
    [{ rules: {} }, /"rules" must be an array/],
    [{ seed: '', rules: [] }, /seed must be a non-empty string or an integer/],
    [
      { rules: [{ endpoint: 'signHash', fault: 'explode' }] },
      /rules\[0\]: fault must be one of status, latency/,
    ],
    [{ rules: [{ endpoint: 'signHash', fault: 'hang', rate: -1 }] }, /rules\[0\]: rate must be from 0 to 1/],
    [{ rules: [{ endpoint: 'signHash', fault: 'hang', max: 0 }] }, /rules\[0\]: max must be >= 1/],
    [{ rules: [{ endpoint: 'signHash', fault: 'hang', when: 'mid' }] }, /rules\[0\]: Unrecognized key/],
    [
      { rules: [{ endpoint: 'info', fault: 'latency', ms: 5, minMs: 1 }] },
      /rules\[0\]: latency takes ms \(fixed\) or minMs/,
    ],
    [{ rules: [{ endpoint: 'info', fault: 'latency', minMs: 1 }] }, /rules\[0\]: a latency range needs both/],
    [
      {
        rules: [
          { endpoint: 'info', fault: 'hang' },
          { endpoint: 9, fault: 'hang' },
        ],
      },
      /rules\[1\]: endpoint/,
    ],
    [
      { rules: [{ endpoint: 'authorize', fault: 'sad-expiry', afterSec: 0 }] },
      /rules\[0\]: afterSec must be > 0/,
    ],
  ];
  for (const [plan, message] of cases) {
    assert.throws(
      () => parseFaultPlan(plan, 'plan.json'),
      (err: unknown) => {
        assert.ok(err instanceof SandboxError, JSON.stringify(plan));
        assert.match(err.message, /^plan\.json/);
        assert.match(err.message, message, JSON.stringify(plan));
        return true;
      },
    );
  }
});

test(
  '--faults takes a spec, inline JSON or a .json file; a missing or bad file is named',
  TIMEOUT,
  async () => {
    const dir = await tempDir('sealer-faults-spec-');
    const file = path.join(dir, 'night.json');
    await fs.writeFile(
      file,
      JSON.stringify({ seed: 'a', rules: [{ endpoint: 'signHash', fault: 'hang', rate: 0.5 }] }),
    );
    const expected = { seed: 'a', rules: [{ endpoint: 'signatures/signHash', rate: 0.5, fault: 'hang' }] };
    assert.deepEqual(await loadFaultsArgument(file), expected);
    assert.deepEqual(await loadFaultsArgument('seed=a,signHash:hang=0.5'), expected);
    assert.deepEqual(
      await loadFaultsArgument('{"seed":"a","rules":[{"endpoint":"signHash","fault":"hang","rate":0.5}]}'),
      expected,
    );
    const missing = path.join(dir, 'absent.json');
    await assert.rejects(loadFaultsArgument(missing), (err: Error) => {
      assert.equal(err.message, `--faults file ${missing}: cannot be read`);
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
    const broken = path.join(dir, 'broken.json');
    await fs.writeFile(broken, '{"rules": [');
    await assert.rejects(
      loadFaultsArgument(broken),
      new RegExp(`--faults file ${broken}: is not valid JSON`),
    );
    const wrong = path.join(dir, 'wrong.json');
    await fs.writeFile(
      wrong,
      JSON.stringify({ rules: [{ endpoint: 'signHash', fault: 'status', status: 404 }] }),
    );
    await assert.rejects(
      loadFaultsArgument(wrong),
      /--faults file .*wrong\.json rules\[0\]: status must be 500/,
    );
  },
);

test(
  'sealer sandbox --faults refuses a bad spec in one line, before it provisions anything',
  TIMEOUT,
  async () => {
    const dir = await tempDir('sealer-faults-cli-');
    const dataDir = path.join(dir, 'sandbox');
    const run = await execFileP(process.execPath, [
      CLI,
      'sandbox',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--faults',
      'signHash:503=0.1,signHash:drop:middle',
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      'sealer: --faults item 2 "signHash:drop:middle": drop takes before, after or mid, not "middle"\n',
    );
    await assert.rejects(fs.stat(dataDir), { code: 'ENOENT' });
  },
);

test('sealer sandbox --faults serves the rules it was given and injects them', TIMEOUT, async () => {
  const dir = await tempDir('sealer-faults-cli-');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'sandbox',
      '--port',
      '0',
      '--data-dir',
      path.join(dir, 'sandbox'),
      '--faults',
      'seed=9,info:429:3s',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  const exited = once(child, 'exit');
  try {
    const lines = readline.createInterface({ input: child.stderr! });
    const said: string[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`sandbox exited with ${code}: ${said.join(' | ')}`)));
      lines.on('line', (line) => {
        said.push(line);
        const m = /listening at (\S+)/.exec(line);
        if (m) resolve(m[1]!);
      });
    });
    const info = await fetch(`${url}/info`);
    assert.equal(info.status, 429);
    assert.equal(info.headers.get('retry-after'), '3');
    const origin = new URL(url).origin;
    const state = (await (await fetch(`${origin}/sandbox/faults`)).json()) as FaultState;
    assert.equal(state.seed, '9');
    assert.deepEqual(state.rules, [
      { endpoint: 'info', rate: 1, fault: 'status', status: 429, retryAfterSec: 3, injected: 1 },
    ]);
    assert.ok(
      said.some((l) => /faults: 1 rules, seed 9/.test(l)),
      said.join('\n'),
    );
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
  }
});
