import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { checkTimestampToken, Rfc3161Client, Rfc3161ClientOptions, TimestampError } from '../../src/pades';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { createOpensslTsa, OpensslTsa } from './tsa-fixture';

interface Seen {
  contentType: string | undefined;
  authorization: string | undefined;
  body: Buffer;
}
type Handler = (seen: Seen, res: http.ServerResponse) => void | Promise<void>;

let tsa: OpensslTsa;
let server: http.Server;
let url: string;
let handler: Handler;
const seen: Seen[] = [];

before(async () => {
  tsa = await createOpensslTsa();
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks),
      };
      seen.push(s);
      void Promise.resolve(handler(s, res)).catch((err: Error) => res.writeHead(599).end(err.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await tsa.cleanup();
});

async function answerWithOpenssl(s: Seen, res: http.ServerResponse): Promise<void> {
  const reply = await tsa.reply(s.body);
  res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(reply);
}

function client(opts: Partial<Rfc3161ClientOptions> = {}): Rfc3161Client {
  seen.length = 0;
  return new Rfc3161Client({ url, trustedRootsDer: [tsa.rootDer], backoffMs: 1, ...opts });
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

async function rejectsWith(p: Promise<unknown>, kind: TimestampError['kind'], reason: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TimestampError, `a TimestampError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, reason);
    return true;
  });
}

test(
  'timestamp() POSTs a timestamp-query with auth and returns a checked token',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    handler = answerWithOpenssl;
    const c = client({ authorization: 'Bearer tsa-secret-1' });
    const digest = digestOf('invoice 1 signature');
    const token = await c.timestamp(digest);
    assert.ok(token.imprintDigest.equals(digest));
    assert.ok(token.tsaCertificateDer.equals(tsa.tsaDer));
    // The caller can re-check it the same way (what a CSC-based source does).
    checkTimestampToken(token.der, { digest, trustedRootsDer: [tsa.rootDer] });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.contentType, 'application/timestamp-query');
    assert.equal(seen[0]!.authorization, 'Bearer tsa-secret-1');
    assert.equal(c.stats.requests, 1);
    assert.equal(c.description, `RFC 3161 TSA ${url}`);
  },
);

test('a 503 is retried and the next good reply is used', { timeout: TEST_TIMEOUT_MS }, async () => {
  let n = 0;
  handler = (s, res) => (n++ === 0 ? void res.writeHead(503).end('busy') : answerWithOpenssl(s, res));
  const c = client();
  const token = await c.timestamp(digestOf('retry'));
  assert.ok(token.imprintDigest.equals(digestOf('retry')));
  assert.equal(c.stats.requests, 2);
  assert.notDeepEqual(seen[0]!.body, seen[1]!.body, 'each try has a fresh nonce');
});

test(
  'a TSA that keeps failing fails the timestamp with the reason after `attempts` tries',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    handler = (_s, res) => void res.writeHead(502).end();
    const c = client({ attempts: 3 });
    await rejectsWith(c.timestamp(digestOf('down')), 'transient', /answered HTTP 502 \(after 3 attempts\)/);
    assert.equal(c.stats.requests, 3);

    handler = () => undefined; // never answers
    const slow = client({ attempts: 2, timeoutMs: 150 });
    await rejectsWith(slow.timestamp(digestOf('slow')), 'transient', /no complete answer within 150 ms/);
    assert.equal(slow.stats.requests, 2);
    // No server.closeAllConnections() here: the client closed the two unanswered connections when it
    // gave up on them, and cutting the idle kept-alive ones too would fail the next test's first
    // request on a connection closed under it (a transient error, retried, counted as a request).
  },
);

test(
  'refusals are not retried, and never show the authorization header',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const secret = `Basic ${Buffer.from(`user:${randomBytes(8).toString('hex')}`).toString('base64')}`;
    handler = (_s, res) => void res.writeHead(401).end();
    const c = client({ authorization: secret });
    await assert.rejects(c.timestamp(digestOf('auth')), (err: Error) => {
      assert.ok(err instanceof TimestampError && err.kind === 'refused');
      assert.match(err.message, /HTTP 401 \(credentials refused\)/);
      const everything = JSON.stringify([
        err.message,
        String(err.stack),
        String((err.cause as Error)?.message),
      ]);
      assert.ok(!everything.includes(secret.slice(6)), 'no credentials in the error');
      return true;
    });
    assert.equal(c.stats.requests, 1);

    handler = answerWithOpenssl;
    const badPolicy = client({ policyOid: '1.2.3.4.5' });
    await rejectsWith(badPolicy.timestamp(digestOf('policy')), 'refused', /rejection .*unacceptedPolicy/);
    assert.equal(badPolicy.stats.requests, 1);
  },
);

test(
  'a reply that fails the checks (stale nonce, wrong content type) is invalid, not retried',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    let stale: Buffer | undefined;
    handler = async (s, res) => {
      stale ??= await tsa.reply(s.body); // every later query gets the first query's reply
      res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(stale);
    };
    const digest = digestOf('replay');
    const c = client();
    await c.timestamp(digest);
    await rejectsWith(c.timestamp(digest), 'invalid', /nonce [0-9a-f]+ is not the nonce sent/);
    assert.equal(c.stats.requests, 2);

    handler = (_s, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>');
    const html = client();
    await rejectsWith(
      html.timestamp(digest),
      'invalid',
      /answered text\/html, not application\/timestamp-reply/,
    );
    assert.equal(html.stats.requests, 1);
  },
);

test(
  'a batch is fetched concurrently, never more than maxConcurrent in flight',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The TSA holds requests until three are waiting: a client that sent fewer at once would hang here.
    const bound = 3;
    let open = 0;
    let peak = 0;
    let held: [Seen, http.ServerResponse][] = [];
    handler = (s, res) => {
      open++;
      peak = Math.max(peak, open);
      held.push([s, res]);
      if (held.length < bound) return;
      const batch = held;
      held = [];
      open -= batch.length;
      return Promise.all(batch.map(([hs, hr]) => answerWithOpenssl(hs, hr))).then(() => undefined);
    };
    const c = client({ maxConcurrent: bound });
    const digests = Array.from({ length: 9 }, (_, i) => digestOf(`invoice ${i}`));
    const tokens = await Promise.all(digests.map((d) => c.timestamp(d)));
    tokens.forEach((t, i) => assert.ok(t.imprintDigest.equals(digests[i]!), `token ${i}`));
    assert.equal(peak, bound, 'the server saw exactly maxConcurrent at once');
    assert.equal(c.stats.peakInFlight, bound);
    assert.equal(c.stats.requests, 9);
  },
);
