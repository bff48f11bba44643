// The prepare pool under hostile inputs: a decompression bomb, a thread out of heap, a task past its
// deadline, an oversized or changed source. Each fails only its own task with a PrepareError naming
// the limit, and ordinary invoices run beside it in the same pool succeed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSampleInvoice } from '../../src/pdf';
import {
  PrepareError,
  PreparePool,
  SourceChangedError,
  type DeadlineTimer,
  type PrepareTask,
  type PrepareTaskResult,
  type PreparePoolOptions,
} from '../../src/seal/prepare-pool';
import { manyObjectsPdf, newestXrefStreamBomb, objectStreamBomb } from '../helpers/bomb-pdf';
import { createTestPki, type TestPki } from '../helpers/test-pki';

const TIMEOUT = { timeout: 180_000 };
let dir: string;
let pki: TestPki;
let ordinary: Buffer;
/** A pool with the default limits, shared by the tests that need no other. */
let defaults: PreparePool;

before(async () => {
  defaults = new PreparePool({ threads: 2 });
  dir = await mkdtemp(join(tmpdir(), 'sealer-prepare-pool-'));
  pki = await createTestPki();
  ordinary = await renderSampleInvoice({
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-1',
    customerName: 'Yamada Shoji KK',
    amount: 110000,
    issueDate: '2025-01-31',
  });
});

after(async () => {
  await defaults.close();
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function source(name: string, bytes: Buffer): Promise<PrepareTask> {
  const sourcePath = join(dir, name);
  await writeFile(sourcePath, bytes);
  return {
    sourcePath,
    sourceSha256: createHash('sha256').update(bytes).digest('hex'),
    signingTime: '2025-02-01T00:00:00.000Z',
    chain: pki.rsa.chainDer,
    reason: 'Invoice',
    location: 'JP',
    name: 'Example Tenant KK e-seal',
    signatureBytes: 4096,
  };
}

async function ordinaryTasks(label: string, n: number): Promise<PrepareTask[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => source(`${label}-ordinary-${i}.pdf`, ordinary)));
}

async function withPool<T>(options: PreparePoolOptions, fn: (pool: PreparePool) => Promise<T>): Promise<T> {
  const pool = new PreparePool({ threads: 2, ...options });
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

/** Asserts a prepare result is the input as read, one update after it, and a 32-byte hash to seal. */
function assertPrepared(result: PrepareTaskResult): void {
  assert.equal(result.prepared.inputLength, ordinary.length);
  assert.ok(Buffer.from(result.source).equals(ordinary));
  // Only the update crossed back, and its digest covers input || update around the placeholder.
  const { update, byteRange, contentDigest } = result.prepared;
  assert.ok(update.length > 0 && update.length < 64 * 1024, `update of ${update.length} bytes`);
  const whole = Buffer.concat([ordinary, update]);
  assert.equal(byteRange[2] + byteRange[3], whole.length);
  const digest = createHash('sha256')
    .update(whole.subarray(0, byteRange[1]))
    .update(whole.subarray(byteRange[2]))
    .digest();
  assert.ok(digest.equals(Buffer.from(contentDigest)));
  assert.equal(result.prepared.hashToSign.length, 32);
}

function rejected(result: PromiseSettledResult<unknown> | undefined): PrepareError {
  assert.equal(result?.status, 'rejected', 'expected the prepare to fail');
  const err = (result as PromiseRejectedResult).reason as unknown;
  assert.ok(err instanceof PrepareError, `a PrepareError, got ${String(err)}`);
  return err;
}

async function rejection(promise: Promise<unknown>): Promise<PrepareError> {
  const [result] = await Promise.allSettled([promise]);
  return rejected(result);
}

test(
  'a decompression bomb is refused at the inflate cap; ordinary tasks beside it succeed',
  TIMEOUT,
  async () => {
    await withPool({ maxInflatedBytes: 1024 * 1024 }, async (pool) => {
      // 256 MiB from ~270 KB, as the newest cross-reference stream: read by every prepare. (A bomb in
      // a stream no update touches is never inflated: see test/pdf/seal-update.fast-path.test.ts.)
      const bomb = await source('bomb.pdf', newestXrefStreamBomb(256));
      const tasks = await ordinaryTasks('inflate', 6);
      const [bombResult, ...results] = await Promise.allSettled([
        pool.run(bomb),
        ...tasks.map((t) => pool.run(t)),
      ]);
      const err = rejected(bombResult);
      assert.equal(err.kind, 'unsealable');
      assert.equal(err.retryable, false);
      assert.equal(err.limit, 'inflatedBytes');
      assert.match(err.message, /bomb\.pdf: input PDF inflates to more than 1048576 bytes/);
      for (const r of results) {
        assert.equal(r.status, 'fulfilled');
        if (r.status === 'fulfilled') assertPrepared(r.value);
      }
    });
  },
);

test('a thread out of heap fails only its task; the pool replaces it and goes on', TIMEOUT, async () => {
  // No inflate cap to speak of, so the bomb's 16 million offset entries reach the heap cap. A visible
  // seal takes the pdf-lib path, which parses every object (the fast path would not touch the bomb).
  await withPool({ maxHeapMb: 64, maxInflatedBytes: 1024 * 1024 * 1024 }, async (pool) => {
    const bomb = {
      ...(await source('heap-bomb.pdf', objectStreamBomb(64))),
      appearance: { page: 1, x: 10, y: 10, size: 40, text: 'seal' },
    };
    const tasks = await ordinaryTasks('heap', 6);
    const [bombResult, ...results] = await Promise.allSettled([
      pool.run(bomb),
      ...tasks.map((t) => pool.run(t)),
    ]);
    const err = rejected(bombResult);
    assert.equal(err.kind, 'unsealable');
    assert.equal(err.limit, 'heap');
    assert.match(err.message, /heap-bomb\.pdf: prepare ran out of its thread's heap of 64 MB/);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ERR_WORKER_OUT_OF_MEMORY');
    for (const r of results) {
      assert.equal(r.status, 'fulfilled');
      if (r.status === 'fulfilled') assertPrepared(r.value);
    }
    // The lost thread was replaced: both threads serve again.
    const more = await ordinaryTasks('heap-after', 4);
    for (const r of await Promise.all(more.map((t) => pool.run(t)))) assertPrepared(r);
    assert.equal(pool.threads, 2);
  });
});

test('a task past its deadline is stopped with its thread; the others succeed', TIMEOUT, async () => {
  const slow = await source('slow.pdf', manyObjectsPdf(60_000)); // legitimate, about a second to prepare
  const started: string[] = [];
  // The injected clock: the slow task's deadline expires as soon as its thread has started it, the
  // others' never do. No wall-clock window is involved.
  const deadlineTimer: DeadlineTimer = (_ms, expire, sourcePath) => {
    started.push(sourcePath);
    if (sourcePath === slow.sourcePath) queueMicrotask(expire);
    return () => undefined;
  };
  await withPool({ deadlineMs: 1234, deadlineTimer }, async (pool) => {
    const tasks = await ordinaryTasks('deadline', 6);
    const [slowResult, ...results] = await Promise.allSettled([
      pool.run(slow),
      ...tasks.map((t) => pool.run(t)),
    ]);
    const err = rejected(slowResult);
    assert.equal(err.kind, 'unsealable');
    assert.equal(err.limit, 'deadline');
    assert.match(err.message, /slow\.pdf: prepare ran past its deadline of 1234 ms/);
    for (const r of results) {
      assert.equal(r.status, 'fulfilled');
      if (r.status === 'fulfilled') assertPrepared(r.value);
    }
    assert.ok(started.includes(slow.sourcePath));
    const after = await ordinaryTasks('deadline-after', 4);
    for (const r of await Promise.all(after.map((t) => pool.run(t)))) assertPrepared(r);
    assert.equal(pool.threads, 2);
  });
});

test('the deadline counts from the start in a thread, not the wait in the queue', TIMEOUT, async () => {
  // One thread: a slow task (about a second) first, nine ordinary ones queued behind it. Were
  // deadlines counted from submission, all ten would run at once while the nine wait.
  const slow = await source('queue-slow.pdf', manyObjectsPdf(30_000));
  let active = 0;
  let mostActive = 0;
  const started: string[] = [];
  const deadlineTimer: DeadlineTimer = (_ms, _expire, sourcePath) => {
    started.push(sourcePath);
    mostActive = Math.max(mostActive, ++active);
    return () => void active--;
  };
  await withPool({ threads: 1, deadlineTimer }, async (pool) => {
    const tasks = await ordinaryTasks('queue', 9);
    await Promise.all([pool.run(slow), ...tasks.map((t) => pool.run(t))]);
  });
  // A task's start is announced on another channel than its result, so a quick task's result can
  // arrive first; it then starts no deadline at all. The slow task's start always arrives in time.
  assert.equal(started[0], slow.sourcePath);
  assert.equal(mostActive, 1, `one deadline at a time: ${started.join(', ')}`);
  assert.equal(active, 0, 'every deadline started was stopped');
});

test('an input over the size cap is refused by stat before it is read', TIMEOUT, async () => {
  const pool = defaults;
  const cap = pool.limits.maxInputBytes;
  assert.equal(cap, 64 * 1024 * 1024);
  // 10 GiB, sparse: reading it would take minutes and more memory than the machine has.
  const huge = await source('huge.pdf', Buffer.from('%PDF-1.7\n'));
  await truncate(huge.sourcePath, 10 * 1024 ** 3);
  const err = await rejection(pool.run(huge));
  assert.equal(err.kind, 'unsealable');
  assert.equal(err.limit, 'inputBytes');
  assert.match(
    err.message,
    /huge\.pdf: 10737418240 bytes is over the input cap maxInputBytes \(67108864 bytes\)/,
  );

  // One byte over is refused; exactly at the cap is read (and then fails as changed, since the
  // sparse tail is not what was enqueued).
  await truncate(huge.sourcePath, cap + 1);
  assert.equal((await rejection(pool.run(huge))).limit, 'inputBytes');
  await truncate(huge.sourcePath, cap);
  assert.ok((await rejection(pool.run(huge))) instanceof SourceChangedError);
});

test('unsealable inputs keep their kind and class across the thread boundary', TIMEOUT, async () => {
  await (async (pool: PreparePool) => {
    const changed = await source('changed.pdf', ordinary);
    await writeFile(changed.sourcePath, Buffer.concat([ordinary, Buffer.from('\n% edited\n')]));
    const changedErr = await rejection(pool.run(changed));
    assert.ok(changedErr instanceof SourceChangedError);
    assert.equal(changedErr.kind, 'unsealable');
    assert.match(changedErr.message, /changed\.pdf changed since it was enqueued/);

    const text = await source('not-a-pdf.pdf', Buffer.from('hello, not a PDF\n'));
    const textErr = await rejection(pool.run(text));
    assert.equal(textErr.kind, 'unsealable');
    assert.match(textErr.message, /not-a-pdf\.pdf: input is not a PDF/);

    const missing = await source('missing.pdf', ordinary);
    await rm(missing.sourcePath);
    const missingErr = await rejection(pool.run(missing));
    assert.equal(missingErr.kind, 'unsealable');
    assert.equal(missingErr.code, 'ENOENT');
    assert.match(missingErr.message, /missing\.pdf: cannot be read \(ENOENT\)/);

    const folder = join(dir, 'a-folder.pdf');
    await mkdir(folder);
    const folderErr = await rejection(pool.run({ ...(await source('x.pdf', ordinary)), sourcePath: folder }));
    assert.equal(folderErr.kind, 'unsealable');
    assert.match(folderErr.message, /a-folder\.pdf: not a regular file/);

    // A FIFO where the PDF should be neither hangs the thread nor is read.
    const fifo = join(dir, 'fifo.pdf');
    execFileSync('mkfifo', [fifo]);
    const fifoErr = await rejection(pool.run({ ...(await source('y.pdf', ordinary)), sourcePath: fifo }));
    assert.match(fifoErr.message, /fifo\.pdf: not a regular file/);

    assertPrepared(await pool.run(await source('fine.pdf', ordinary)));
  })(defaults);
});

test('a task aborted from outside is transient; the pool goes on', TIMEOUT, async () => {
  await (async (pool: PreparePool) => {
    const slow = await source('abort-slow.pdf', manyObjectsPdf(60_000));
    const controller = new AbortController();
    const run = pool.run(slow, { signal: controller.signal });
    controller.abort(new Error('worker shutting down'));
    const err = await rejection(run);
    assert.equal(err.kind, 'transient');
    assert.equal(err.retryable, true);
    assert.match(err.message, /abort-slow\.pdf: prepare did not finish/);
    assertPrepared(await pool.run(await source('after-abort.pdf', ordinary)));
  })(defaults);
});

test('the default clock is a real timer from the start of the task', TIMEOUT, async () => {
  // 1 ms against about a second of work: the margin is a thousandfold, in the only direction that
  // could make the test fail.
  await withPool({ threads: 1, deadlineMs: 1 }, async (pool) => {
    const slow = await source('real-timer-slow.pdf', manyObjectsPdf(30_000));
    const err = await rejection(pool.run(slow));
    assert.equal(err.limit, 'deadline');
    assert.match(err.message, /real-timer-slow\.pdf: prepare ran past its deadline of 1 ms/);
  });
});
