// What the client does when a provider strays: too few signatures, 429/503 with Retry-After, no
// expiresIn, no oauth2 in /info, odd error shapes, 401s judged by error code (CSC section 10.2's
// invalid_token / expired_token, or the Bearer challenge), HTML error pages and silence. A tiny local HTTP
// server plays the provider here, because the sandbox is strict and never strays.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CscBadReplyError, CscClient, CscError, OID, type CredentialFacts } from '../../src/csc';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

type Reply = {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  raw?: string;
  hang?: boolean;
};
let handlers: Record<string, (n: number) => Reply> = {};
const seen: string[] = [];
let server: http.Server;
let origin: string;

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '';
      seen.push(path);
      const handler = handlers[path];
      const reply: Reply = handler
        ? handler(seen.filter((p) => p === path).length)
        : { status: 404, body: {} };
      if (reply.hang) return; // never answer
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.raw ?? JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

// Only the test of a provider that never answers needs a short deadline: with 300 ms for every test, a
// loaded machine timed out the first /info call of the file (a reply from this process's own server).
function provider(routes: Record<string, (n: number) => Reply>, timeoutMs = 10_000): CscClient {
  seen.length = 0;
  handlers = {
    '/csc/v2/info': () => ({ body: { specs: '2.0.0.2', authType: ['oauth2client'], methods: [] } }),
    '/oauth2/token': () => ({ body: { access_token: 'tok', token_type: 'Bearer', expires_in: 3600 } }),
    ...routes,
  };
  return new CscClient({
    baseUrl: `${origin}/csc/v2`,
    auth: { kind: 'client_credentials', clientId: 'c', clientSecret: 's' },
    timeoutMs,
    maxRetryDelayMs: 1000,
  });
}

const credential: CredentialFacts = {
  credentialId: 'cred-1',
  certificates: [],
  keyAlgorithm: 'rsa',
  signAlgoOid: OID.sha256WithRSAEncryption,
  multisign: 10,
  scal: 1,
  authMode: 'explicit',
  factors: ['PIN'],
  certificateSerialHex: '01',
};
const hashes = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
const SAD = 'sad-value-that-must-not-leak';

async function failure(p: Promise<unknown>): Promise<CscError> {
  const err = await p.then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CscError, `a CscError, got ${String(err)}`);
  assert.ok(!err.message.includes(SAD));
  return err;
}

test(
  'fewer signatures than hashes is a provider fault, not a result: transient, a CscBadReplyError',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({ '/csc/v2/signatures/signHash': () => ({ body: { signatures: ['AAAA'] } }) });
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.message, 'CSC signatures/signHash failed: provider returned 1 signatures for 2 hashes');
    assert.ok(err instanceof CscBadReplyError);
    assert.equal(err.kind, 'transient');
    assert.equal(err.retryable, true);
    assert.equal(client.calls.signHash, 1, 'not re-sent by the client: the SAD may have been spent');
  },
);

test(
  'an ECDSA signature that is neither DER nor raw r||s, or no signature list, is a transient provider fault',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const ec: CredentialFacts = {
      ...credential,
      keyAlgorithm: 'ecdsa',
      signAlgoOid: OID.ecdsaWithSHA256,
      ecCurve: 'prime256v1',
    };
    const odd = provider({
      '/csc/v2/signatures/signHash': () => ({
        body: {
          signatures: [Buffer.alloc(64, 7).toString('base64'), Buffer.alloc(63, 7).toString('base64')],
        },
      }),
    });
    const err = await failure(odd.signHash({ credential: ec, sad: SAD, hashes }));
    assert.ok(err instanceof CscBadReplyError);
    assert.equal(err.kind, 'transient');
    assert.match(err.message, /signature 1: ECDSA signature of 63 bytes is neither DER nor raw r\|\|s/);

    const none = provider({ '/csc/v2/signatures/signHash': () => ({ body: { result: 'ok' } }) });
    const noList = await failure(none.signHash({ credential, sad: SAD, hashes }));
    assert.ok(noList instanceof CscBadReplyError);
    assert.equal(noList.kind, 'transient');
  },
);

test(
  '501 Not Implemented from any endpoint is a permanent refusal',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const notImplemented = () => ({ status: 501, body: { error: 'not_implemented' } });
    const client = provider({
      '/csc/v2/credentials/info': notImplemented,
      '/csc/v2/credentials/authorize': notImplemented,
      '/csc/v2/signatures/signHash': notImplemented,
    });
    for (const call of [
      () => client.credentialInfo('cred-1'),
      () => client.authorize({ credentialId: 'cred-1', numSignatures: 1, pin: '1234' }),
      () => client.signHash({ credential, sad: SAD, hashes }),
    ]) {
      const err = await failure(call());
      assert.equal(err.status, 501);
      assert.equal(err.kind, 'refused');
      assert.equal(err.retryable, false);
    }
    assert.equal(client.calls.signHash, 1, 'a 501 is not re-sent');
  },
);

test('429 with Retry-After is waited out and the call re-sent', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = provider({
    '/csc/v2/signatures/signHash': (n) =>
      n === 1
        ? { status: 429, headers: { 'retry-after': '0' }, body: { error: 'rate_limited' } }
        : { body: { signatures: ['AQ==', 'Ag=='] } },
  });
  const sigs = await client.signHash({ credential, sad: SAD, hashes });
  assert.deepEqual(sigs, [Buffer.from([1]), Buffer.from([2])]);
  assert.equal(client.calls.signHash, 2);
});

test(
  '503 on every try gives up after the bounded retries, as a retryable error',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({
      '/csc/v2/signatures/signHash': () => ({
        status: 503,
        headers: { 'retry-after': '0' },
        body: { error: 'temporarily_unavailable' },
      }),
    });
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.status, 503);
    assert.equal(err.retryable, true);
    assert.equal(client.calls.signHash, 4); // first try + 3 re-sends
  },
);

test(
  'a Retry-After longer than we accept fails at once, saying how long to wait',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({
      '/csc/v2/signatures/signHash': () => ({ status: 429, headers: { 'retry-after': '120' }, body: {} }),
    });
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.status, 429);
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterMs, 120_000);
    assert.equal(client.calls.signHash, 1);
  },
);

test(
  'no expiresIn means the spec default of 3600 s; no oauth2 in /info means the origin',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({ '/csc/v2/credentials/authorize': () => ({ body: { SAD: 'abc' } }) });
    const asked = Date.now();
    const got = await client.authorize({ credentialId: 'cred-1', numSignatures: 2, pin: '1234' });
    assert.equal(got.sad, 'abc');
    assert.ok(got.expiresAt >= asked + 3600_000 && got.expiresAt <= Date.now() + 3600_000);
    assert.deepEqual(seen, ['/csc/v2/info', '/oauth2/token', '/csc/v2/credentials/authorize']);
  },
);

test(
  'nested error objects and odd spellings are read and normalised',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({
      '/csc/v2/credentials/authorize': () => ({
        status: 400,
        body: { error: { code: 'InvalidPin', message: 'PIN\nwrong' } },
      }),
    });
    const err = await failure(client.authorize({ credentialId: 'cred-1', numSignatures: 1, pin: '987654' }));
    assert.equal(err.error, 'InvalidPin');
    assert.equal(err.code, 'invalid_pin');
    assert.equal(err.message, 'CSC credentials/authorize failed: HTTP 400 InvalidPin: PIN wrong');
    assert.ok(!err.message.includes('987654'));
    assert.equal(client.calls.authorize, 1);
  },
);

test('a 401 about the PIN is not re-sent with a new token', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = provider({
    '/csc/v2/credentials/authorize': () => ({
      status: 401,
      body: { error: 'invalid_pin', error_description: 'bad PIN' },
    }),
  });
  const err = await failure(client.authorize({ credentialId: 'cred-1', numSignatures: 1, pin: '0000' }));
  assert.equal(err.status, 401);
  assert.equal(client.calls.authorize, 1);
  assert.equal(client.calls.token, 1);
});

test(
  'a 401 is judged by its error code: expired_token is refreshed and re-sent, whatever its wording',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The description names the PIN; only the code matters.
    const client = provider({
      '/csc/v2/signatures/signHash': (n) =>
        n === 1
          ? {
              status: 401,
              body: { error: 'expired_token', error_description: 'token of the PIN session expired' },
            }
          : { body: { signatures: ['AQ==', 'Ag=='] } },
    });
    const sigs = await client.signHash({ credential, sad: SAD, hashes });
    assert.equal(sigs.length, 2);
    assert.equal(client.calls.signHash, 2);
    assert.equal(client.calls.token, 2);
  },
);

test(
  'a 401 with another code (access_denied) is not a token problem and is not re-sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({
      '/csc/v2/signatures/signHash': () => ({
        status: 401,
        body: { error: 'access_denied', error_description: 'The client may not use this credential' },
      }),
    });
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.status, 401);
    assert.equal(err.code, 'access_denied');
    assert.equal(client.calls.signHash, 1);
    assert.equal(client.calls.token, 1);
  },
);

test(
  'a bare 401, or one whose Bearer challenge says invalid_token, refreshes the token once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const reply of [
      { status: 401, raw: '' },
      { status: 401, headers: { 'www-authenticate': 'Bearer realm="x", error="invalid_token"' }, raw: '' },
      // The spec's own example body: a generic code, the challenge says what is wrong.
      {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token", error_description="expired"' },
        body: { error: 'invalid_request', error_description: 'The access token is not valid' },
      },
    ]) {
      const client = provider({
        '/csc/v2/signatures/signHash': (n) => (n === 1 ? reply : { body: { signatures: ['AQ==', 'Ag=='] } }),
      });
      await client.signHash({ credential, sad: SAD, hashes });
      assert.equal(client.calls.signHash, 2, JSON.stringify(reply));
      assert.equal(client.calls.token, 2);
    }
  },
);

test(
  'credentials/authorize is never re-sent by the client, even after a refused token or a 429',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const reply of [
      { status: 401, body: { error: 'invalid_token' } },
      { status: 429, headers: { 'retry-after': '0' }, body: {} },
    ]) {
      const client = provider({
        '/csc/v2/credentials/authorize': (n) => (n === 1 ? reply : { body: { SAD: 'abc' } }),
      });
      const err = await failure(client.authorize({ credentialId: 'cred-1', numSignatures: 1, pin: '1234' }));
      assert.equal(err.status, reply.status);
      assert.equal(client.calls.authorize, 1);
      // The refused token is dropped: the next call (here the SAD manager's retry) fetches a new one.
      await client.authorize({ credentialId: 'cred-1', numSignatures: 1, pin: '1234' });
      assert.equal(client.calls.token, reply.status === 401 ? 2 : 1);
    }
  },
);

test(
  'an HTML error page gives the status and its text, retryable for a 502',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({
      '/csc/v2/signatures/signHash': () => ({
        status: 502,
        headers: { 'content-type': 'text/html' },
        raw: '<html>oops</html>',
      }),
    });
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.message, 'CSC signatures/signHash failed: HTTP 502: Bad Gateway');
    assert.equal(err.retryable, true);
  },
);

test(
  'a provider that never answers times out as a retryable error',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider({ '/csc/v2/signatures/signHash': () => ({ hang: true }) }, 300);
    const err = await failure(client.signHash({ credential, sad: SAD, hashes }));
    assert.equal(err.message, 'CSC signatures/signHash failed: no answer within 300 ms');
    assert.equal(err.retryable, true);
    assert.equal(err.status, undefined);
  },
);
