// One document through prepare → sign → finish behind the signer seam: a real prepare thread, a real
// key behind a small in-test RawSigner, and the sealed file checked by the product's verifier. A signer
// that misbehaves or waits for an approval gives a typed error naming its step, and nothing is sealed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CmsTemplate, verifySealedPdf } from '../../src/pades';
import { renderSampleInvoice } from '../../src/pdf';
import {
  AwaitingApproval,
  LevelFinisher,
  PrepareError,
  PreparedHashChanged,
  PreparePool,
  SealError,
  SealStepError,
  sealDocument,
  type FinishedSeal,
  type PreparedSeal,
  type PrepareTask,
  type RawSigner,
  type SealFinisher,
} from '../../src/seal';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const T = { timeout: TEST_TIMEOUT_MS };

let pki: TestPki;
let pool: PreparePool;
let levelFinisher: LevelFinisher;
let sourcePath: string;
let input: Buffer;
let dir: string;

before(async () => {
  pki = await createTestPki();
  pool = new PreparePool({ threads: 1 });
  levelFinisher = new LevelFinisher({
    level: 'B-B',
    template: CmsTemplate.fromCertificates(pki.ecdsa.chainDer),
    chainDer: pki.ecdsa.chainDer,
    trustRootsDer: [pki.rootCertDer],
  });
  input = Buffer.from(
    await renderSampleInvoice({
      invoiceNumber: 'INV-7',
      tenantName: 'Acme K.K.',
      customerName: 'Fuji Trading',
      amount: 12_000,
      issueDate: '2026-12-01',
    }),
  );
  // Made here, not with tempDir(): its after() hook, registered inside before(), removed the folder
  // before the last tests here had run.
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-seal-document-'));
  sourcePath = path.join(dir, 'INV-7.pdf');
  await fs.writeFile(sourcePath, input);
});
after(async () => {
  await pool.close();
  await pki.cleanup();
  await fs.rm(dir, { recursive: true, force: true });
});

function task(signingTime = new Date().toISOString()): PrepareTask {
  return {
    sourcePath,
    sourceSha256: createHash('sha256').update(input).digest('hex'),
    signingTime,
    chain: pki.ecdsa.chainDer,
    reason: 'Invoice INV-7',
    location: 'JP',
    name: 'Acme e-seal',
    signatureBytes: levelFinisher.signatureBytes,
  };
}

/** A RawSigner over the test key that records every call; `answer` may bend what it returns. */
function signer(
  answer: (hashes: Buffer[]) => Buffer[] = (hashes) => hashes.map((h) => pki.ecdsa.signDigest(h)),
): RawSigner & {
  calls: { hashes: Buffer[]; runId?: string }[];
} {
  const calls: { hashes: Buffer[]; runId?: string }[] = [];
  return {
    calls,
    signRaw: (hashes, runId) => {
      calls.push({ hashes: hashes.map((h) => Buffer.from(h)), runId });
      return Promise.resolve(answer(hashes));
    },
  };
}

/** The level finisher, counting how often it is asked to finish. */
function finisher(): SealFinisher & { finishes: number } {
  const counted = {
    finishes: 0,
    finish: (prepared: PreparedSeal, signature: Buffer, source: Uint8Array): Promise<FinishedSeal> => {
      counted.finishes++;
      return levelFinisher.finish(prepared, signature, source);
    },
  };
  return counted;
}

async function sourceUnchanged(): Promise<void> {
  assert.deepEqual(await fs.readFile(sourcePath), input);
}

test('the sealed update verifies; the signer is called once, with the one hash and the run', T, async () => {
  const s = signer();
  const f = finisher();
  const { finished, source, prepared, stages } = await sealDocument({
    pool,
    finisher: f,
    signer: s,
    task: task(),
    runId: 'run-1',
  });
  assert.deepEqual(Buffer.from(source), input);
  assert.equal(finished.inputLength, input.length);
  const checks = await verifySealedPdf(Buffer.concat([source, finished.update]));
  assert.equal(checks.length, 1);
  assert.ok(checks[0]!.valid, checks[0]!.problems.join('; '));
  assert.equal(s.calls.length, 1);
  assert.equal(s.calls[0]!.runId, 'run-1');
  assert.deepEqual(s.calls[0]!.hashes, [Buffer.from(prepared.hashToSign)]);
  assert.equal(f.finishes, 1);
  for (const ms of [stages.prepareMs, stages.signMs, stages.finishMs])
    assert.ok(ms >= 0 && Number.isFinite(ms));
});

test('a signer answering with no signature or two is a sign error; nothing is finished', T, async () => {
  for (const answer of [
    () => [],
    (hashes: Buffer[]) => [pki.ecdsa.signDigest(hashes[0]!), pki.ecdsa.signDigest(hashes[0]!)],
  ]) {
    const s = signer(answer);
    const f = finisher();
    await assert.rejects(
      sealDocument({ pool, finisher: f, signer: s, task: task() }),
      (err: unknown) =>
        err instanceof SealStepError &&
        err.step === 'sign' &&
        err.cause instanceof SealError &&
        /the signer returned [02] signatures for 1 hash/.test(err.cause.message),
    );
    assert.equal(s.calls.length, 1);
    assert.equal(f.finishes, 0);
  }
  await sourceUnchanged();
});

test("a wrong signature (another hash's, or one byte changed) fails finish; nothing sealed", T, async () => {
  const other = createHash('sha256').update('another document').digest();
  const flipped = (hashes: Buffer[]) => {
    const sig = pki.ecdsa.signDigest(hashes[0]!);
    sig[sig.length - 1] = sig[sig.length - 1]! ^ 1;
    return [sig];
  };
  for (const answer of [() => [pki.ecdsa.signDigest(other)], flipped]) {
    const f = finisher();
    await assert.rejects(
      sealDocument({ pool, finisher: f, signer: signer(answer), task: task() }),
      (err: unknown) =>
        err instanceof SealStepError && err.step === 'finish' && err.cause instanceof SealError,
    );
    assert.equal(f.finishes, 1);
  }
  await sourceUnchanged();
});

class NeedsApproval extends Error {}

test(
  'awaiting approval gives the hash and signing time; prepared again at that time, it seals',
  T,
  async () => {
    const signingTime = '2026-12-01T09:00:00.000Z';
    const refusing = signer(() => {
      throw new NeedsApproval('no approval parked');
    });
    const f = finisher();
    const waiting = await sealDocument({
      pool,
      finisher: f,
      signer: refusing,
      task: task(signingTime),
      awaitsApproval: (err) => err instanceof NeedsApproval,
    }).then(
      () => assert.fail('sealed without an approval'),
      (err: unknown) => err,
    );
    assert.ok(waiting instanceof AwaitingApproval, String(waiting));
    assert.ok(waiting.cause instanceof NeedsApproval);
    assert.equal(waiting.signingTime, signingTime);
    assert.equal(refusing.calls.length, 1);
    assert.deepEqual(refusing.calls[0]!.hashes, [waiting.hash]);
    assert.equal(f.finishes, 0);
    await sourceUnchanged();

    // What a SCAL2 approval binds: the same document at the same time has the same hash, and seals.
    const s = signer();
    const { finished, source, prepared } = await sealDocument({
      pool,
      finisher: f,
      signer: s,
      task: task(waiting.signingTime),
      pendingHash: waiting.hash.toString('hex'),
    });
    assert.deepEqual(Buffer.from(prepared.hashToSign), waiting.hash);
    const checks = await verifySealedPdf(Buffer.concat([source, finished.update]));
    assert.ok(checks[0]!.valid, checks[0]!.problems.join('; '));
    assert.equal(s.calls.length, 1);
  },
);

test("without a predicate that knows it, the signer's approval error is a sign error", T, async () => {
  const cause = new NeedsApproval('no approval parked');
  await assert.rejects(
    sealDocument({
      pool,
      finisher: finisher(),
      signer: signer(() => {
        throw cause;
      }),
      task: task(),
    }),
    (err: unknown) => err instanceof SealStepError && err.step === 'sign' && err.cause === cause,
  );
});

test('a pending hash the document no longer has: nothing is signed', T, async () => {
  const s = signer();
  const pendingHash = '00'.repeat(32);
  await assert.rejects(
    sealDocument({ pool, finisher: finisher(), signer: s, task: task(), pendingHash }),
    (err: unknown) =>
      err instanceof PreparedHashChanged &&
      err.kind === 'unsealable' &&
      err.expected === pendingHash &&
      /^[0-9a-f]{64}$/.test(err.actual) &&
      err.actual !== pendingHash,
  );
  assert.equal(s.calls.length, 0);
});

test('a source that is not the one enqueued fails prepare, with its kind; nothing is signed', T, async () => {
  const s = signer();
  await assert.rejects(
    sealDocument({
      pool,
      finisher: finisher(),
      signer: s,
      task: { ...task(), sourceSha256: '11'.repeat(32) },
    }),
    (err: unknown) =>
      err instanceof SealStepError &&
      err.step === 'prepare' &&
      err.cause instanceof PrepareError &&
      err.cause.kind === 'unsealable',
  );
  assert.equal(s.calls.length, 0);
});
