// A jobs folder with one good and one broken definition: `sealer enqueue` of the good one works and of
// the broken one is an error naming why; `enqueue --all` runs the good one and names the broken one;
// `sealer schedule` starts the good one (it fires and enqueues) and names the skipped one on stderr and
// in an error-level log line. Run in-process through run(argv, io), on real Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/context';
import { openSealQueue } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { writeJobFile, writeTenantExport } from '../helpers/night-fixture';

const TIMEOUT = { timeout: 180_000 };

/** Output captured as text; `seen(pattern)` resolves once stderr matches (no clock involved). */
function capture() {
  const out = { stdout: '', stderr: '', logs: '' };
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pattern.test(out.stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const io: CliIo = {
    stdout: { write: (t: string) => (out.stdout += t) },
    stderr: {
      write: (t: string) => {
        out.stderr += t;
        check();
      },
    },
    logs: { write: (line: string) => (out.logs += line) },
  };
  const seen = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      waiters.push({ pattern, resolve });
      check();
    });
  return { out, io, seen };
}

/** A jobs folder: sakura-nightly is good (with `count` invoices waiting), fuji.json is invalid. */
async function setUp(count: number, cron = '0 2 * * *') {
  const dir = await tempDir();
  const { url, prefix, connection } = await testRedis();
  // The in-process commands read these as a shell-started one would.
  process.env.REDIS_URL = url;
  process.env.SEALER_PREFIX = prefix;
  const jobsDir = path.join(dir, 'jobs');
  await writeJobFile(jobsDir, {
    tenant: 'sakura',
    credentialId: 'sakura-eseal-rsa',
    providerUrl: 'http://127.0.0.1:9/csc/v2', // never called: producing needs no provider
    signing: { clientSecret: 'env:NOT_NEEDED_HERE', pin: 'env:NOT_NEEDED_HERE' },
  });
  await fs.writeFile(
    path.join(jobsDir, 'sakura.json'),
    (await fs.readFile(path.join(jobsDir, 'sakura.json'), 'utf8')).replace(
      '"0 2 * * *"',
      JSON.stringify(cron),
    ),
  );
  const broken = await writeJobFile(jobsDir, {
    tenant: 'fuji',
    credentialId: 'fuji-eseal-ec',
    providerUrl: 'http://127.0.0.1:9/csc/v2',
    signing: { clientSecret: 'env:NOT_NEEDED_HERE', batchSize: 0 },
  });
  await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', count);
  const queue = openSealQueue(connection, prefix);
  return { dir, jobsDir, broken, queue };
}

test('enqueue: the good job runs, the broken one is named with why', TIMEOUT, async () => {
  const { jobsDir, broken, queue } = await setUp(4);
  try {
    const good = capture();
    const code = await run(['node', 'sealer', 'enqueue', 'sakura-nightly', '--jobs', jobsDir], good.io);
    assert.equal(code, 0, good.out.stderr);
    assert.match(
      good.out.stdout,
      /4 rows: 4 enqueued, 0 already queued, 0 already sealed, 0 rejected, 0 file\(s\) failed/,
    );
    assert.equal(await queue.count(), 4);
    // The other tenant's broken file is logged at error level (pino level 50), not hidden.
    const logged = good.out.logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; job?: string; file?: string });
    assert.ok(
      logged.some(
        (l) =>
          l.level === 50 &&
          l.msg === 'job definition skipped' &&
          l.job === 'fuji-nightly' &&
          l.file === broken,
      ),
      good.out.logs,
    );

    const bad = capture();
    assert.equal(await run(['node', 'sealer', 'enqueue', 'fuji-nightly', '--jobs', jobsDir], bad.io), 1);
    assert.equal(
      bad.out.stderr.trim(),
      `sealer: job fuji-nightly cannot be used: job definition ${broken} is invalid: signing.batchSize: Too small: expected number to be >=1`,
    );

    const unknown = capture();
    assert.equal(await run(['node', 'sealer', 'enqueue', 'nosuch', '--jobs', jobsDir], unknown.io), 1);
    assert.match(
      unknown.out.stderr,
      /no job named nosuch; known: sakura-nightly; left out as broken: fuji-nightly/,
    );
  } finally {
    await queue.close();
  }
});

test('enqueue --all runs every good job, names the broken one and exits 1', TIMEOUT, async () => {
  const { jobsDir, broken, queue } = await setUp(3);
  try {
    const all = capture();
    assert.equal(await run(['node', 'sealer', 'enqueue', '--all', '--jobs', jobsDir], all.io), 1);
    assert.match(all.out.stdout, /^sakura-nightly: run \S+: 1 file\(s\), 3 rows: 3 enqueued/m);
    assert.ok(
      all.out.stderr.includes(
        `job fuji-nightly skipped: job definition ${broken} is invalid: signing.batchSize`,
      ),
      all.out.stderr,
    );
    assert.equal(await queue.count(), 3);
    // Neither a job name nor --all, or both: a one-line error.
    for (const args of [[], ['sakura-nightly', '--all']]) {
      const r = capture();
      assert.equal(await run(['node', 'sealer', 'enqueue', ...args, '--jobs', jobsDir], r.io), 1);
      assert.match(
        r.out.stderr,
        /^error: (missing argument 'job' \(or --all\)|give a job name or --all, not both)\n$/,
      );
    }
  } finally {
    await queue.close();
  }
});

test('schedule starts the good job (it fires and enqueues) and names the skipped one', TIMEOUT, async () => {
  const { jobsDir, broken, queue } = await setUp(2, '* * * * * *');
  const stop = new AbortController();
  const s = capture();
  const exited = run(['node', 'sealer', 'schedule', '--jobs', jobsDir], { ...s.io, signal: stop.signal });
  try {
    await s.seen(
      /^scheduling 1 job\(s\): sakura-nightly "\* \* \* \* \* \*" Asia\/Tokyo; 1 skipped \(see above\)$/m,
    );
    assert.ok(
      s.out.stderr.includes(`job fuji-nightly skipped: job definition ${broken} is invalid`),
      s.out.stderr,
    );
    // Every second: the first trigger that finds the export enqueues its invoices.
    await s.seen(/^sakura-nightly: run \S+: 2 enqueued, 0 rejected$/m);
  } finally {
    stop.abort();
  }
  assert.equal(await exited, 0, s.out.stderr);
  assert.match(s.out.stderr, /scheduler stopped after \d+ run\(s\)/);
  assert.equal(await queue.count(), 2);
  const errors = s.out.logs
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: number; msg: string; job?: string; reason?: string })
    .filter((l) => l.level >= 50);
  assert.deepEqual(
    errors.map((l) => [l.msg, l.job]),
    [['job definition skipped', 'fuji-nightly']],
  );
  assert.match(errors[0]!.reason!, /signing\.batchSize/);
  await queue.close();
});
