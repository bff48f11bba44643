// The batch coordinator against the sandbox: concurrent sign() calls become exactly ceil(n / batchSize)
// signHash calls, each caller gets the signature of its own hash, a batch the provider rejects fails
// only its own callers, partial batches leave after maxWaitMs, and no more than maxInFlight calls run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  BatchSigner,
  CscClient as CscClientClass,
  CscError,
  SadManager,
  type CscClient,
  type CscClientOptions,
  type SignHashRequest,
} from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

const ID = 'fuji-eseal-ec';
let dataDir: string;
before(async () => {
  dataDir = await makeDataDir();
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

function messages(n: number): { msg: Buffer; hash: Buffer }[] {
  return Array.from({ length: n }, (_, i) => {
    const msg = Buffer.from(`invoice ${i} ${crypto.randomUUID()}`);
    return { msg, hash: crypto.createHash('sha256').update(msg).digest() };
  });
}

async function signer(
  fx: Fixture,
  o: {
    batchSize: number;
    maxInFlight?: number;
    maxWaitMs?: number;
    maxDelayMs?: number;
    logger?: pino.Logger;
    client?: CscClient;
  },
) {
  const client = o.client ?? (await fx.clientFor(ID));
  const credential = await client.credentialInfo(ID);
  const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
  const batch = new BatchSigner({ client, credential, sadManager, ...o });
  return { batch, publicKey: new crypto.X509Certificate(credential.certificates[0]!).publicKey, client };
}

test(
  '25 concurrent sign() calls with batchSize 10 make exactly 3 signHash calls, each signature its own',
  TIMEOUT,
  async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const fx = await startFixture(dataDir, { ecdsaSignatureFormat: 'raw' });
    try {
      const { batch, publicKey } = await signer(fx, { batchSize: 10, logger });
      fx.sandbox.resetStats();
      const items = messages(25);
      const sigs = await Promise.all(items.map((it) => batch.sign(it.hash)));
      items.forEach((it, i) =>
        assert.ok(crypto.verify('sha256', it.msg, publicKey, sigs[i]!), `signature ${i}`),
      );
      // A signature checked against a neighbour's message must fail: the order really is per caller.
      assert.equal(crypto.verify('sha256', items[1]!.msg, publicKey, sigs[0]!), false);
      const stats = fx.sandbox.stats();
      assert.equal(stats.signHash, 3);
      assert.equal(stats.signatures, 25);
      assert.equal(stats.authorize, 1);
      assert.equal(stats.errors, 0);
      assert.deepEqual(batch.stats(), { batches: 3, signatures: 25, authorisations: 1, failedBatches: 0 });
      await batch.close();

      const batchLines = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'CSC batch signed');
      assert.deepEqual(batchLines.map((l) => l.size).sort(), [10, 10, 5]);
      for (const l of batchLines) {
        assert.equal(l.credentialId, ID);
        assert.equal(typeof l.ms, 'number');
      }
      const factors = await fx.factorsFor(ID)();
      for (const secret of [factors.pin!, factors.totpSecret!]) assert.ok(!lines.join('').includes(secret));
      assert.ok(!/SAD|access_token|Bearer/i.test(lines.join('')));
    } finally {
      await fx.close();
    }
  },
);

/** A client whose signHash calls of `size` hashes name a signAlgo the key lacks: the sandbox refuses them. */
class BadAlgoForSize extends CscClientClass {
  constructor(
    options: CscClientOptions,
    private readonly size: number,
  ) {
    super(options);
  }

  override signHash(req: SignHashRequest): Promise<Buffer[]> {
    if (req.hashes.length !== this.size) return super.signHash(req);
    return super.signHash({ ...req, credential: { ...req.credential, signAlgoOid: '1.2.840.10045.4.3.4' } });
  }
}

test(
  'a batch the provider rejects fails only its own callers, with the CscError chained',
  TIMEOUT,
  async () => {
    // The two full batches of 10 name a signAlgo the key lacks and are refused; the last 5 pass.
    const fx = await startFixture(dataDir);
    try {
      const plain = await fx.clientFor(ID);
      const client = new BadAlgoForSize(
        {
          baseUrl: plain.baseUrl,
          auth: {
            kind: 'client_credentials',
            clientId: fx.credential(ID).clientId,
            clientSecret: (await fs.readFile(fx.credential(ID).clientSecretFile, 'utf8')).trim(),
          },
          timeoutMs: 5000,
        },
        10,
      );
      const { batch, publicKey } = await signer(fx, { batchSize: 10, client });
      const items = messages(25);
      const results = await Promise.allSettled(items.map((it) => batch.sign(it.hash)));
      const rejected = results.filter((r) => r.status === 'rejected');
      const fulfilled = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, sig: r.value }] : []));
      assert.equal(rejected.length, 20);
      assert.deepEqual(
        fulfilled.map((f) => f.i),
        [20, 21, 22, 23, 24],
      );
      for (const f of fulfilled) assert.ok(crypto.verify('sha256', items[f.i]!.msg, publicKey, f.sig));
      for (const r of rejected) {
        const err = (r as PromiseRejectedResult).reason;
        assert.ok(err instanceof CscError);
        assert.equal(err.status, 400);
        assert.equal(err.error, 'invalid_request');
        assert.equal(err.retryable, false);
        assert.match(
          err.message,
          /^CSC signatures\/signHash failed: credential fuji-eseal-ec, batch of 10: HTTP 400 invalid_request: Invalid parameter signAlgo/,
        );
        assert.ok(err.cause instanceof CscError);
      }
      const { batches, signatures, failedBatches } = batch.stats();
      assert.deepEqual(
        { batches, signatures, failedBatches },
        { batches: 3, signatures: 5, failedBatches: 2 },
      );
    } finally {
      await fx.close();
    }
  },
);

test('a partial batch leaves after maxWaitMs, and close() flushes what is pending', TIMEOUT, async () => {
  const fx = await startFixture(dataDir);
  try {
    const { batch } = await signer(fx, { batchSize: 10, maxWaitMs: 30 });
    fx.sandbox.resetStats();
    const started = Date.now();
    await Promise.all(messages(3).map((it) => batch.sign(it.hash)));
    const waited = Date.now() - started;
    assert.ok(waited >= 25, `waited ${waited} ms for more hashes`);
    assert.equal(fx.sandbox.stats().signHash, 1);

    const slow = await signer(fx, { batchSize: 10, maxWaitMs: 10_000, maxDelayMs: 10_000 });
    const pending = Promise.all(messages(4).map((it) => slow.batch.sign(it.hash)));
    await slow.batch.close();
    assert.equal((await pending).length, 4);
    assert.equal(slow.batch.stats().batches, 1);
    await assert.rejects(slow.batch.sign(messages(1)[0]!.hash), /the batch signer is closed/);
  } finally {
    await fx.close();
  }
});

test('hashes trickling in faster than maxWaitMs still leave by maxDelayMs', TIMEOUT, async (t) => {
  const fx = await startFixture(dataDir);
  try {
    const client = await fx.clientFor(ID);
    const { batch, publicKey } = await signer(fx, { batchSize: 100, maxWaitMs: 60, maxDelayMs: 150, client });
    await batch.sign(messages(1)[0]!.hash); // the SAD is authorised now, before time is mocked
    // Each signHash call is noted (when, how many hashes) and held until the trickle is over, so that
    // no request is on the wire while timers are mocked.
    const sent: { at: number; size: number }[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const realSignHash = client.signHash.bind(client);
    client.signHash = async (req) => {
      sent.push({ at: Date.now(), size: req.hashes.length });
      await released;
      return realSignHash(req);
    };
    // The batch signer's clock (Date.now and setTimeout) is moved by the test: a hash every 20 ms, never
    // the pause of maxWaitMs, however slow the machine is.
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
    // Millisecond by millisecond, letting the batch signer act after each, so `sent` says to the
    // millisecond when each batch left.
    const advance = async (ms: number) => {
      for (let k = 0; k < ms; k++) {
        t.mock.timers.tick(1);
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    const t0 = Date.now();
    const items = messages(12);
    const results = [batch.sign(items[0]!.hash)];
    for (const [i, it] of items.slice(1).entries()) {
      await advance(20);
      // Up to 140 ms nothing left: every pause was shorter than maxWaitMs and the oldest is younger
      // than maxDelayMs; at 150 ms the 8 hashes that had come left, while hashes kept coming.
      assert.equal(sent.length, (i + 1) * 20 < 150 ? 0 : 1, `at ${(i + 1) * 20} ms`);
      results.push(batch.sign(it.hash));
    }
    await advance(100);
    // The last 4 (160..220 ms) left once no hash had come for maxWaitMs.
    assert.deepEqual(sent, [
      { at: t0 + 150, size: 8 },
      { at: t0 + 220 + 60, size: 4 },
    ]);
    t.mock.timers.reset();
    release();
    const sigs = await Promise.all(results);
    items.forEach((it, i) =>
      assert.ok(crypto.verify('sha256', it.msg, publicKey, sigs[i]!), `signature ${i}`),
    );
    assert.equal(batch.stats().batches, 3);
    await batch.close();
  } finally {
    await fx.close();
  }
});

test('no more than maxInFlight signHash calls run at once', TIMEOUT, async () => {
  const fx = await startFixture(dataDir, { latencyMs: 40 });
  try {
    const client = await fx.clientFor(ID);
    let running = 0;
    let peak = 0;
    const realSignHash = client.signHash.bind(client);
    client.signHash = async (req) => {
      peak = Math.max(peak, ++running);
      try {
        return await realSignHash(req);
      } finally {
        running--;
      }
    };
    const { batch } = await signer(fx, { batchSize: 5, maxInFlight: 2, client });
    fx.sandbox.resetStats();
    const sigs = await batch.signRaw(messages(30).map((m) => m.hash));
    assert.equal(sigs.length, 30);
    assert.equal(peak, 2);
    assert.equal(fx.sandbox.stats().signHash, 6);
  } finally {
    await fx.close();
  }
});

test(
  'load() counts the hashes no reservation covers yet: queued, and a batch waiting for its SAD',
  TIMEOUT,
  async () => {
    const fx = await startFixture(dataDir);
    try {
      const client = await fx.clientFor(ID);
      // The first authorisation waits until the test lets it go.
      let letGo!: () => void;
      const gate = new Promise<void>((resolve) => (letGo = resolve));
      const authorize = client.authorize.bind(client);
      let asked = 0;
      client.authorize = async (req) => {
        asked++;
        await gate;
        return authorize(req);
      };
      const { batch } = await signer(fx, { batchSize: 3, maxWaitMs: 60_000, maxDelayMs: 60_000, client });
      const items = messages(5);
      assert.deepEqual(batch.load(), { unreserved: 0 });
      const first = items.slice(0, 3).map((it) => batch.sign(it.hash));
      const rest = items.slice(3).map((it) => batch.sign(it.hash));
      while (asked === 0) await new Promise((r) => setImmediate(r));
      // 3 sent to be reserved (waiting for the SAD), 2 queued for the next batch.
      assert.deepEqual(batch.load(), { unreserved: 5 });
      letGo();
      await Promise.all(first);
      assert.deepEqual(batch.load(), { unreserved: 2 });
      const closed = batch.close();
      await Promise.all(rest);
      await closed;
      assert.deepEqual(batch.load(), { unreserved: 0 });
    } finally {
      await fx.close();
    }
  },
);
