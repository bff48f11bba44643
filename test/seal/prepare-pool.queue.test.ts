// The prepare pool's own queue: tasks wait in the pool until a thread is free (so a deadline starts
// when a thread takes its task), an aborted waiting task leaves the queue, closing fails what still
// waits as transient, and each credential's chain gets its own CMS template in a thread.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSampleInvoice } from '../../src/pdf';
import { CmsTemplate } from '../../src/pades';
import { PrepareError, PreparePool, type PrepareTask } from '../../src/seal/prepare-pool';
import { manyObjectsPdf } from '../helpers/bomb-pdf';
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
