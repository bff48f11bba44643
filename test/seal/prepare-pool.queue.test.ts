// The prepare pool's own queue: tasks wait in the pool until a thread is free (so a deadline starts
// when a thread takes its task) and those waiting together go to it as one batch; a batch that loses
// its thread runs each task again alone, so only the one at fault fails. An aborted waiting task
// leaves the queue, closing fails what still waits as transient, and each credential's chain gets its
// own CMS template in a thread.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSampleInvoice } from '../../src/pdf';
import { CmsTemplate } from '../../src/pades';
import { PrepareError, PreparePool, type DeadlineTimer, type PrepareTask } from '../../src/seal/prepare-pool';
import { manyObjectsPdf, objectStreamBomb } from '../helpers/bomb-pdf';
import { createTestPki, type TestPki } from '../helpers/test-pki';

const TIMEOUT = { timeout: 180_000 };
let dir: string;
let pki: TestPki;
let ordinary: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealer-prepare-queue-'));
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
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function source(name: string, bytes: Buffer, chain = pki.rsa.chainDer): Promise<PrepareTask> {
  const sourcePath = join(dir, name);
  await writeFile(sourcePath, bytes);
  return {
    sourcePath,
    sourceSha256: createHash('sha256').update(bytes).digest('hex'),
    signingTime: '2025-02-01T00:00:00.000Z',
    chain,
    reason: 'Invoice',
    location: 'JP',
    name: 'Example Tenant KK e-seal',
    signatureBytes: 4096,
  };
}

async function rejection(p: Promise<unknown>): Promise<PrepareError> {
  const err = await p.then(
    () => assert.fail('expected the prepare to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof PrepareError, `a PrepareError, got ${String(err)}`);
  return err;
}

test('a task aborted while it waits for a thread leaves the queue at once', TIMEOUT, async () => {
  const pool = new PreparePool({ threads: 1 });
  try {
    const slow = pool.run(await source('wait-slow.pdf', manyObjectsPdf(30_000)));
    const controller = new AbortController();
    const waiting = pool.run(await source('wait-aborted.pdf', ordinary), { signal: controller.signal });
    const behind = pool.run(await source('wait-behind.pdf', ordinary));
    let slowDone = false;
    slow.then(
      () => (slowDone = true),
      () => undefined,
    );
    controller.abort(new Error('worker shutting down'));
    const err = await rejection(waiting);
    assert.equal(err.kind, 'transient');
    assert.match(err.message, /wait-aborted\.pdf: prepare did not finish: worker shutting down/);
    assert.equal(slowDone, false, 'the aborted task did not wait for the thread to be free');
    await slow;
    assert.equal((await behind).prepared.inputLength, ordinary.length, 'the task behind it ran');
  } finally {
    await pool.close();
  }
});

test('closing the pool fails the tasks still waiting for a thread as transient', TIMEOUT, async () => {
  const pool = new PreparePool({ threads: 1 });
  const running = pool.run(await source('close-slow.pdf', manyObjectsPdf(30_000)));
  const waiting = await Promise.all([1, 2, 3].map((i) => source(`close-waiting-${i}.pdf`, ordinary)));
  const runs = Promise.allSettled(waiting.map((t) => pool.run(t)));
  running.catch(() => undefined);
  await pool.close();
  for (const run of await runs) {
    assert.equal(run.status, 'rejected');
    const err = (run as PromiseRejectedResult).reason as unknown;
    assert.ok(err instanceof PrepareError && err.kind === 'transient', String(err));
  }
  await assert.rejects(pool.run(waiting[0]!), PrepareError, 'nothing new starts on a closed pool');
});

test("each credential's chain gets its own signed attributes in one thread", TIMEOUT, async () => {
  const pool = new PreparePool({ threads: 1 });
  try {
    for (const signer of [pki.rsa, pki.ecdsa, pki.rsa, pki.ecdsa]) {
      const task = await source(`chain-${signer.keyType}.pdf`, ordinary, signer.chainDer);
      const { prepared } = await pool.run(task);
      const expected = CmsTemplate.fromCertificates(signer.chainDer).signedAttributes(
        Buffer.from(prepared.contentDigest),
      );
      assert.ok(Buffer.from(prepared.signedAttributes).equals(expected), signer.keyType);
      const leafHash = createHash('sha256').update(signer.certDer).digest();
      assert.ok(
        Buffer.from(prepared.signedAttributes).includes(leafHash),
        `${signer.keyType}: names its leaf`,
      );
    }
  } finally {
    await pool.close();
  }
});

/** Records whose deadline started (a batch's is named after its first task); never expires one. */
function recordingTimer(started: string[]): DeadlineTimer {
  return (_ms, _expire, sourcePath) => {
    started.push(sourcePath);
    return () => undefined;
  };
}

test(
  'tasks that waited together go to the thread as one batch and each gets its own result',
  TIMEOUT,
  async () => {
    const started: string[] = [];
    const pool = new PreparePool({ threads: 1, deadlineTimer: recordingTimer(started) });
    try {
      const tasks = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          source(`batch-${i}.pdf`, Buffer.concat([ordinary, Buffer.from(`% ${i}\n`)])),
        ),
      );
      const results = await Promise.all(tasks.map((t) => pool.run(t)));
      results.forEach((r, i) => {
        assert.equal(r.prepared.inputLength, ordinary.length + `% ${i}\n`.length, `task ${i}: its own input`);
        assert.equal(createHash('sha256').update(r.source).digest('hex'), tasks[i]!.sourceSha256);
      });
      // The first went alone at once; the eleven that waited behind it went as one batch.
      assert.deepEqual(started, [tasks[0]!.sourcePath, tasks[1]!.sourcePath]);
    } finally {
      await pool.close();
    }
  },
);

test(
  'a batch that loses its thread to one task runs each again alone: only that one fails',
  TIMEOUT,
  async () => {
    const started: string[] = [];
    // As in prepare-pool.limits: a visible seal takes pdf-lib's path, whose parse of the bomb's 16 million
    // offset entries reaches the 64 MB heap cap.
    const pool = new PreparePool({
      threads: 1,
      maxHeapMb: 64,
      maxInflatedBytes: 1024 * 1024 * 1024,
      deadlineTimer: recordingTimer(started),
    });
    try {
      const first = await source('lost-first.pdf', ordinary);
      const before = await Promise.all([1, 2, 3].map((i) => source(`lost-before-${i}.pdf`, ordinary)));
      const bomb = {
        ...(await source('lost-bomb.pdf', objectStreamBomb(64))),
        appearance: { page: 1, x: 10, y: 10, size: 40, text: 'seal' },
      };
      const behind = await Promise.all([1, 2, 3].map((i) => source(`lost-behind-${i}.pdf`, ordinary)));
      const settled = await Promise.allSettled([first, ...before, bomb, ...behind].map((t) => pool.run(t)));
      const bombResult = settled[4]!;
      assert.equal(bombResult.status, 'rejected');
      const err = (bombResult as PromiseRejectedResult).reason as PrepareError;
      assert.ok(err instanceof PrepareError);
      assert.equal(err.limit, 'heap');
      assert.match(err.message, /lost-bomb\.pdf: prepare ran out of its thread's heap of 64 MB/);
      settled.forEach((r, i) => i === 4 || assert.equal(r.status, 'fulfilled', `task ${i}`));
      // Batched first (one deadline named after its first task), then every task of it alone.
      assert.equal(started[1], before[0]!.sourcePath);
      for (const t of [...before, bomb, ...behind])
        assert.ok(started.slice(2).includes(t.sourcePath), t.sourcePath);
    } finally {
      await pool.close();
    }
  },
);

test('a batch starts no task once it has run for half the deadline; those run alone', TIMEOUT, async () => {
  const started: string[] = [];
  // A deadline of 1 ms that never expires (the recording timer): half of it rounds down to 0, so after
  // the batch's first task, however fast, no other task of the batch is started in it. (At 2 ms, a
  // first task under 1 ms let the next one start in the batch: the incremental reader reads little.)
  const pool = new PreparePool({ threads: 1, deadlineMs: 1, deadlineTimer: recordingTimer(started) });
  try {
    const first = await source('half-first.pdf', ordinary);
    const slow = await source('half-slow.pdf', manyObjectsPdf(5_000));
    const rest = await Promise.all([1, 2, 3].map((i) => source(`half-rest-${i}.pdf`, ordinary)));
    const results = await Promise.all([first, slow, ...rest].map((t) => pool.run(t)));
    for (const r of results) assert.ok(r.prepared.hashToSign.length === 32);
    assert.deepEqual(started.slice(0, 2), [first.sourcePath, slow.sourcePath]);
    assert.deepEqual(started.slice(2).sort(), rest.map((t) => t.sourcePath).sort(), 'each of the rest alone');
  } finally {
    await pool.close();
  }
});
