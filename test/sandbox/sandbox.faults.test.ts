// Fault injection as a plain HTTP client sees it: CSC error answers (500, 503, 429 + Retry-After),
// latency, requests that never answer, connections cut before, after or in the middle of an answer,
// signHash answers with a signature missing, extra or not verifying, SADs that expire before they
// said; counts from GET /sandbox/faults exact under a seed, rate 0 injecting nothing, the token
// endpoint left alone unless named, and a clean shutdown with a request hanging.
import assert from 'node:assert/strict';
import { constants, publicDecrypt, X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { FaultRule, FaultState, SandboxHandle } from '../../src/sandbox';
import {
  authorize,
  b64,
  credential,
  csc,
  digestOf,
  errorOf,
  getToken,
  makeDataDir,
  SHA256_OID,
  SHA256_RSA_OID,
  startFixture,
  tokenRequest,
  secret,
  type Fixture,
} from './sandbox-fixture';

const TIMEOUT = { timeout: 120_000 };
const DIGEST_INFO_SHA256 = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** Every log line the sandbox wrote, parsed: checked for fault kinds and for secrets. */
const logLines: Record<string, unknown>[] = [];
const captureLogger = pino(
  { level: 'debug' },
  { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
);

let dataDir: string;
let fx: Fixture;
let sandbox: SandboxHandle;
let sakuraToken: string;

before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture({ logger: captureLogger }, dataDir);
  sandbox = fx.sandbox;
  sakuraToken = await getToken(sandbox, 'sakura-app');
});
after(async () => {
  await fx.close();
  await rm(dataDir, { recursive: true, force: true });
});

function faultsUrl(s: SandboxHandle = sandbox): string {
  return `${s.oauth2Url}/sandbox/faults`;
}

async function setFaults(
  body: { rules?: unknown[]; seed?: string | number; spec?: string; resetCounts?: boolean },
  s: SandboxHandle = sandbox,
): Promise<FaultState> {
  const res = await fetch(faultsUrl(s), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ resetCounts: true, ...body }),
  });
  const json = (await res.json()) as FaultState;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

async function faultState(s: SandboxHandle = sandbox): Promise<FaultState> {
  const res = await fetch(faultsUrl(s));
  assert.equal(res.status, 200);
  return (await res.json()) as FaultState;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const rsa = () => credential(sandbox, 'sakura-eseal-rsa');

async function sadFor(numSignatures: number): Promise<string> {
  const res = await authorize(sandbox, sakuraToken, rsa(), { numSignatures });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.SAD as string;
}

function signHashBody(sad: string, messages: string[]) {
  return {
    credentialID: 'sakura-eseal-rsa',
    SAD: sad,
    hashes: messages.map((m) => b64(digestOf(m))),
    hashAlgorithmOID: SHA256_OID,
    signAlgo: SHA256_RSA_OID,
  };
}

function signHash(sad: string, messages: string[]) {
  return csc(sandbox, 'signatures/signHash', sakuraToken, signHashBody(sad, messages));
}

/** The signHash request as a raw fetch, for faults that leave nothing to parse. */
function rawSignHash(sad: string, messages: string[], signal?: AbortSignal): Promise<Response> {
  return fetch(`${sandbox.url}/signatures/signHash`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${sakuraToken}` },
    body: JSON.stringify(signHashBody(sad, messages)),
    signal,
  });
}

/** A signHash that must now work with `sad`: proves an earlier faulty call spent nothing. */
async function assertSadUnspent(sad: string, messages: string[]): Promise<void> {
  await setFaults({ rules: [] });
  const res = await signHash(sad, messages);
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

/** What an RSA signature signs: the SHA-256 in its DigestInfo, or undefined if it is not one. */
function signedDigest(cert: X509Certificate, signature: Buffer): Buffer | undefined {
  try {
    const decoded = publicDecrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    if (!decoded.subarray(0, DIGEST_INFO_SHA256.length).equals(DIGEST_INFO_SHA256)) return undefined;
    return decoded.subarray(DIGEST_INFO_SHA256.length);
  } catch {
    return undefined;
  }
}

async function rsaCertificate(): Promise<X509Certificate> {
  const res = await csc(sandbox, 'credentials/info', sakuraToken, { credentialID: 'sakura-eseal-rsa' });
  const certs = (res.body.cert as { certificates: string[] }).certificates;
  return new X509Certificate(Buffer.from(certs[0]!, 'base64'));
}

const statusRule = (status: 500 | 503 | 429, extra: Partial<FaultRule> = {}) => ({
  endpoint: 'signHash',
  fault: 'status',
  status,
  ...extra,
});

test(
  '500, 503 and 429 are CSC error answers (429 and a 503 that says so with Retry-After), spending nothing',
  TIMEOUT,
  async () => {
    const sad = await sadFor(1);
    const cases = [
      { rule: statusRule(500), status: 500, error: 'server_error', retryAfter: null },
      { rule: statusRule(503), status: 503, error: 'temporarily_unavailable', retryAfter: null },
      {
        rule: statusRule(503, { retryAfterSec: 4 }),
        status: 503,
        error: 'temporarily_unavailable',
        retryAfter: '4',
      },
      {
        rule: statusRule(429, { retryAfterSec: 7 }),
        status: 429,
        error: 'too_many_requests',
        retryAfter: '7',
      },
      { rule: statusRule(429), status: 429, error: 'too_many_requests', retryAfter: '1' },
    ];
    for (const c of cases) {
      await setFaults({ rules: [c.rule] });
      const res = await signHash(sad, ['status-fault']);
      assert.equal(res.status, c.status);
      assert.equal(res.body.error, c.error);
      assert.equal(typeof res.body.error_description, 'string');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.headers.get('retry-after'), c.retryAfter);
      const state = await faultState();
      assert.deepEqual(state.injected, { 'signatures/signHash': { [`status:${c.status}`]: 1 } });
      assert.equal(state.total, 1);
      assert.equal(state.rules[0]!.injected, 1);
    }
    // Refused before the provider looked at it: the SAD is still good for its one signature.
    await assertSadUnspent(sad, ['status-fault']);
  },
);

test('a rule on an endpoint applies to CSC v1 and v2 alike, and to nothing else', TIMEOUT, async () => {
  await setFaults({ spec: 'info:503:2s' });
  for (const base of [sandbox.url, sandbox.url.replace(/\/csc\/v2$/, '/csc/v1')]) {
    const res = await fetch(`${base}/info`, { method: 'POST' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '2');
  }
  const other = await csc(sandbox, 'credentials/list', sakuraToken, {});
  assert.equal(other.status, 200);
  assert.deepEqual((await faultState()).injected, { info: { 'status:503': 2 } });
});

test('the token endpoint gets no faults from csc rules, only from rules that name it', TIMEOUT, async () => {
  const c = rsa();
  const form = {
    grant_type: 'client_credentials',
    client_id: c.clientId,
    client_secret: await secret(c.clientSecretFile),
  };
  await setFaults({ spec: 'csc:500' });
  assert.equal((await fetch(`${sandbox.url}/info`)).status, 500);
  const ok = await tokenRequest(sandbox, form);
  assert.equal(ok.status, 200, 'csc does not cover oauth2/token');
  await setFaults({ spec: 'token:503' });
  const refused = await tokenRequest(sandbox, form);
  assert.deepEqual(
    { status: refused.status, error: refused.body.error },
    { status: 503, error: 'temporarily_unavailable' },
  );
  assert.deepEqual((await faultState()).injected, { 'oauth2/token': { 'status:503': 1 } });
});

test('latency holds the answer back by a fixed time, or by one drawn from a range', TIMEOUT, async () => {
  await setFaults({ rules: [{ endpoint: 'info', fault: 'latency', ms: 150 }] });
  const t0 = performance.now();
  assert.equal((await fetch(`${sandbox.url}/info`)).status, 200);
  assert.ok(performance.now() - t0 >= 149, `answered after ${performance.now() - t0} ms`);

  const from = logLines.length;
  await setFaults({ spec: 'seed=3,info:latency:20-80ms' });
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    assert.equal((await fetch(`${sandbox.url}/info`)).status, 200);
    const line = logLines.slice(from).filter((l) => l.msg === 'sandbox: fault injected')[i];
    assert.ok(line, `fault ${i} logged`);
    assert.equal(line.fault, 'latency');
    const ms = line.ms as number;
    assert.ok(ms >= 20 && ms <= 80, `drawn ${ms} ms`);
    assert.ok(performance.now() - t >= ms - 1, `answered after ${performance.now() - t} ms, drew ${ms}`);
  }
  const drawn = logLines
    .slice(from)
    .filter((l) => l.msg === 'sandbox: fault injected')
    .map((l) => l.ms);
  assert.ok(new Set(drawn).size > 1, `a range draws different delays: ${drawn.join(', ')}`);
  assert.deepEqual((await faultState()).injected, { info: { latency: 8 } });
});

test('hang: no answer until the client gives up; the connection is then released', TIMEOUT, async () => {
  const sad = await sadFor(1);
  await setFaults({ spec: 'signHash:hang' });
  const client = new AbortController();
  let settled = false;
  const pending = rawSignHash(sad, ['hang'], client.signal).finally(() => {
    settled = true;
  });
  await waitFor('the request to hang', async () => (await faultState()).hanging === 1);
  await sleep(50);
  assert.equal(settled, false, 'a hanging request gets no answer');
  client.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  await waitFor('the hang to end', async () => (await faultState()).hanging === 0);
  const state = await faultState();
  assert.deepEqual(state.injected, { 'signatures/signHash': { hang: 1 } });
  await assertSadUnspent(sad, ['hang']);
});

/** A request over node:http that reports what arrived before the connection went. */
function rawPost(url: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status?: number; contentLength?: number; received: Buffer; error?: string }>(
    (resolve) => {
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let contentLength: number | undefined;
      const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
        status = res.statusCode;
        contentLength = Number(res.headers['content-length']);
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status, contentLength, received: Buffer.concat(chunks) }));
        res.on('error', (err) =>
          resolve({ status, contentLength, received: Buffer.concat(chunks), error: err.message }),
        );
      });
      req.on('error', (err) =>
        resolve({ status, contentLength, received: Buffer.concat(chunks), error: err.message }),
      );
      req.end(body);
    },
  );
}

test(
  'drop: the connection is cut before the request is handled, after it, or mid-answer',
  TIMEOUT,
  async () => {
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${sakuraToken}` };
    const url = `${sandbox.url}/signatures/signHash`;

    // before: nothing was done, so the SAD still works.
    const sadBefore = await sadFor(1);
    await setFaults({ spec: 'signHash:drop:before' });
    const before = await rawPost(url, headers, JSON.stringify(signHashBody(sadBefore, ['drop'])));
    assert.equal(before.status, undefined, 'no status line');
    assert.ok(before.error, 'the client sees the connection go');
    await assert.rejects(rawSignHash(sadBefore, ['drop']), TypeError, 'fetch fails too');
    assert.deepEqual((await faultState()).injected, { 'signatures/signHash': { 'drop:before': 2 } });
    await assertSadUnspent(sadBefore, ['drop']);

    // after: the SAD was spent, and the answer lost.
    const sadAfter = await sadFor(1);
    await setFaults({ spec: 'signHash:drop:after' });
    const afterDrop = await rawPost(url, headers, JSON.stringify(signHashBody(sadAfter, ['drop'])));
    assert.equal(afterDrop.status, undefined);
    assert.ok(afterDrop.error);
    await setFaults({ rules: [] });
    const spent = errorOf(await signHash(sadAfter, ['drop']));
    assert.equal(spent.status, 400);
    assert.match(spent.description, /all 1 authorised signatures have been used/);

    // mid: status line, headers with the full length, half the body, then the connection goes.
    const sadMid = await sadFor(1);
    await setFaults({ spec: 'signHash:drop:mid' });
    const mid = await rawPost(url, headers, JSON.stringify(signHashBody(sadMid, ['drop'])));
    assert.equal(mid.status, 200);
    assert.ok(mid.error, 'the body ends early with an error');
    assert.equal(mid.received.length, Math.floor(mid.contentLength! / 2));
    assert.ok(mid.received.toString().startsWith('{"signatures":["'));
    const viaFetch = await rawSignHash(await sadFor(1), ['drop']);
    assert.equal(viaFetch.status, 200);
    await assert.rejects(viaFetch.text(), 'fetch sees the body cut short');
    assert.deepEqual((await faultState()).injected, { 'signatures/signHash': { 'drop:mid': 2 } });
  },
);

test(
  'signHash answers with a signature missing, one extra, one over another hash, one corrupted',
  TIMEOUT,
  async () => {
    const cert = await rsaCertificate();
    const messages = ['inv-1', 'inv-2', 'inv-3'];
    const digests = messages.map(digestOf);
    const verifying = (sigs: Buffer[]) =>
      sigs.map((s, i) => signedDigest(cert, s)?.equals(digests[i] ?? Buffer.alloc(0)) === true);
    for (const mode of ['missing', 'extra', 'wrong-hash', 'corrupt'] as const) {
      await setFaults({ spec: `seed=${mode},signHash:${mode}` });
      const res = await signHash(await sadFor(3), messages);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const sigs = (res.body.signatures as string[]).map((s) => Buffer.from(s, 'base64'));
      if (mode === 'missing') assert.equal(sigs.length, 2);
      if (mode === 'extra') {
        assert.equal(sigs.length, 4);
        // The extra one is a real signature by the key, over a hash nobody sent.
        const signedOver = sigs.map((s) => signedDigest(cert, s));
        assert.ok(signedOver.every((d) => d !== undefined));
        assert.equal(signedOver.filter((d) => !digests.some((x) => x.equals(d!))).length, 1);
      }
      if (mode === 'wrong-hash' || mode === 'corrupt') {
        assert.equal(sigs.length, 3);
        assert.equal(verifying(sigs).filter((ok) => !ok).length, 1, `${mode}: one does not verify`);
        assert.ok(
          sigs.every((s) => s.length === 256),
          'same size as a good one',
        );
        const bad = sigs[verifying(sigs).indexOf(false)]!;
        if (mode === 'wrong-hash') assert.ok(signedDigest(cert, bad), 'a valid signature, over another hash');
        else assert.equal(signedDigest(cert, bad), undefined, 'corrupted bytes sign nothing');
      }
      assert.deepEqual((await faultState()).injected, {
        'signatures/signHash': { [`signatures:${mode}`]: 1 },
      });
    }
    // A refused call has no signatures to spoil: nothing is counted.
    await setFaults({ spec: 'signHash:missing' });
    const refused = await signHash('not-a-sad', messages);
    assert.equal(refused.status, 400);
    const state = await faultState();
    assert.equal(state.total, 0);
    assert.equal(state.rules[0]!.injected, 0);
  },
);

test(
  'sad-expiry: the SAD says its full expiresIn but is refused as expired after K uses',
  TIMEOUT,
  async () => {
    await setFaults({ spec: 'authorize:sad-expiry:2uses' });
    const res = await authorize(sandbox, sakuraToken, rsa(), { numSignatures: 10 });
    assert.equal(res.status, 200);
    assert.equal(res.body.expiresIn, 3600, 'the answer does not tell');
    const sad = res.body.SAD as string;
    assert.equal((await signHash(sad, ['use-1'])).status, 200);
    assert.equal((await signHash(sad, ['use-2'])).status, 200);
    const third = errorOf(await signHash(sad, ['use-3']));
    assert.deepEqual(third, { status: 400, error: 'invalid_request', description: 'SAD expired' });
    assert.deepEqual((await faultState()).injected, {
      'credentials/authorize': { 'sad-expiry': 1 },
      'signatures/signHash': { 'sad-expired-early': 1 },
    });
    // A refused authorisation issues no SAD, so no fault is counted for it.
    const wrong = await authorize(sandbox, sakuraToken, rsa(), { numSignatures: 1 }, { pin: '000000x' });
    assert.equal(wrong.status, 400);
    assert.equal((await faultState()).injected['credentials/authorize']?.['sad-expiry'], 1);
  },
);

test('sad-expiry: ... or after M seconds, well before the N it said', TIMEOUT, async () => {
  await setFaults({ spec: 'authorize:sad-expiry:50ms' });
  const res = await authorize(sandbox, sakuraToken, rsa(), { numSignatures: 10 });
  const answeredAt = Date.now();
  assert.equal(res.status, 200);
  assert.equal(res.body.expiresIn, 3600);
  await waitFor('50 ms to pass', async () => Date.now() >= answeredAt + 60);
  const refused = errorOf(await signHash(res.body.SAD as string, ['late']));
  assert.deepEqual(refused, { status: 400, error: 'invalid_request', description: 'SAD expired' });
});

test(
  'with a seed the faults are exact: the counts match what the client saw, and a replay repeats them',
  TIMEOUT,
  async () => {
    const plan = {
      seed: 'night-42',
      rules: [
        { endpoint: 'info', fault: 'status', status: 500, rate: 0.25 },
        { endpoint: 'info', fault: 'status', status: 503, rate: 0.15 },
        { endpoint: 'csc', fault: 'status', status: 429, rate: 0.1 },
      ],
    };
    const run = async () => {
      const seen: number[] = [];
      for (let i = 0; i < 100; i++) seen.push((await fetch(`${sandbox.url}/info`)).status);
      return seen;
    };
    await setFaults(plan);
    const first = await run();
    const state = await faultState();
    const countOf = (s: number) => first.filter((x) => x === s).length;
    assert.deepEqual(state.injected, {
      info: { 'status:500': countOf(500), 'status:503': countOf(503), 'status:429': countOf(429) },
    });
    assert.equal(state.total, 100 - countOf(200));
    assert.equal(state.requests.info, 100);
    assert.deepEqual(
      state.rules.map((r) => r.injected),
      [countOf(500), countOf(503), countOf(429)],
    );
    // The rates are honoured (the seed fixes the outcome, so these bounds are exact, not lucky).
    assert.ok(countOf(500) >= 15 && countOf(500) <= 35, `500s: ${countOf(500)}`);
    assert.ok(countOf(503) >= 7 && countOf(503) <= 25, `503s: ${countOf(503)}`);
    assert.ok(countOf(429) >= 3 && countOf(429) <= 18, `429s: ${countOf(429)}`);

    await setFaults(plan);
    assert.deepEqual(await run(), first, 'same seed, same requests: same faults');
    await setFaults({ ...plan, seed: 'another-night' });
    assert.notDeepEqual(await run(), first, 'another seed: other faults');
  },
);

test('rate 0 injects nothing, of any kind', TIMEOUT, async () => {
  await setFaults({
    spec:
      'seed=1,csc:500=0,csc:503=0,csc:429=0,csc:hang=0,csc:drop:mid=0,signHash:missing=0,signHash:corrupt=0,' +
      'csc:latency:5s=0,authorize:sad-expiry:1uses=0,token:500=0',
  });
  const sad = await sadFor(25);
  for (let i = 0; i < 25; i++) assert.equal((await signHash(sad, [`zero-${i}`])).status, 200);
  assert.equal((await getToken(sandbox, 'sakura-app')).length > 0, true);
  const state = await faultState();
  assert.equal(state.total, 0);
  assert.deepEqual(state.injected, {});
  assert.equal(state.requests['signatures/signHash'], 25);
  assert.ok(state.rules.every((r) => r.injected === 0));
});

test('max caps how many faults a rule injects', TIMEOUT, async () => {
  await setFaults({ rules: [{ endpoint: 'info', fault: 'status', status: 503, max: 2 }] });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await fetch(`${sandbox.url}/info`)).status);
  assert.deepEqual(statuses, [503, 503, 200, 200, 200]);
});

test(
  'the control endpoint refuses a bad plan, naming the rule and field, and keeps the old one',
  TIMEOUT,
  async () => {
    await setFaults({ spec: 'info:503' });
    const post = (body: unknown) =>
      fetch(faultsUrl(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const cases: [unknown, RegExp][] = [
      [
        { rules: [{ endpoint: 'signHash', fault: 'status', status: 502 }] },
        /rules\[0\]: status must be 500, 503 or 429/,
      ],
      [
        { rules: [{ endpoint: 'signHash', fault: 'drop', when: 'later' }] },
        /rules\[0\]: when must be before, after or mid/,
      ],
      [{ rules: [{ endpoint: 'nowhere', fault: 'hang' }] }, /rules\[0\]: unknown endpoint "nowhere"/],
      [{ spec: 'signHash:503=0.7,csc:500=0.5' }, /add up to 1\.2/],
      [{ spec: 'info:latency:fast' }, /spec item 1 "info:latency:fast": latency needs a duration/],
      [{ rules: [], extra: 1 }, /unknown field "extra"/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      const json = (await res.json()) as { error: string; error_description: string };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(json.error, 'invalid_request');
      assert.match(json.error_description, message);
    }
    assert.equal((await fetch(`${sandbox.url}/info`)).status, 503, 'the rules in force are kept');
  },
);

test(
  'injected faults are logged at info with their kind, and no log line holds a secret',
  TIMEOUT,
  async () => {
    const injected = logLines.filter((l) => l.msg === 'sandbox: fault injected');
    assert.ok(injected.length > 0);
    for (const line of injected) {
      assert.equal(line.level, 30);
      assert.equal(typeof line.fault, 'string');
      assert.equal(typeof line.endpoint, 'string');
    }
    const kinds = new Set(injected.map((l) => String(l.fault)));
    for (const kind of [
      'status:500',
      'status:503',
      'status:429',
      'latency',
      'hang',
      'drop:before',
      'drop:after',
    ]) {
      assert.ok(kinds.has(kind), `${kind} logged`);
    }
    const text = logLines.map((l) => JSON.stringify(l)).join('\n');
    const secrets = [...sandbox.issuedSecrets()];
    for (const c of sandbox.credentials)
      secrets.push(await secret(c.pinFile), await secret(c.totpSecretFile));
    for (const s of secrets) assert.ok(!text.includes(s), 'a secret reached the log');
  },
);

test(
  'the sandbox closes cleanly while a request hangs and another waits out a long latency',
  TIMEOUT,
  async () => {
    // A second sandbox on the same (provisioned) dataDir: its own rules, its own connections.
    const other = await startFixture({ faults: 'signHash:hang,info:latency:600s' }, dataDir);
    try {
      const token = await getToken(other.sandbox, 'sakura-app');
      const res = await authorize(other.sandbox, token, credential(other.sandbox, 'sakura-eseal-rsa'));
      assert.equal(res.status, 200);
      const pending = rawPost(
        `${other.sandbox.url}/signatures/signHash`,
        { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        JSON.stringify({ ...signHashBody(res.body.SAD as string, ['shutdown']) }),
      );
      const slow = rawPost(`${other.sandbox.url}/info`, {}, '');
      await waitFor('one request hanging, one delayed', async () => {
        const state = await faultState(other.sandbox);
        return state.hanging === 1 && state.injected.info?.latency === 1;
      });
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const timersBefore = timers();
      await other.close();
      for (const seen of [await pending, await slow]) {
        assert.equal(seen.status, undefined);
        assert.ok(seen.error, 'the client is told the connection closed');
      }
      // The 600 s delay was cancelled, not left to keep the process alive.
      assert.ok(timers() < timersBefore, `timers before ${timersBefore}, after ${timers()}`);
    } finally {
      await other.close();
    }
  },
);
