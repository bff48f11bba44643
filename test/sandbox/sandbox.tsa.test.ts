// The sandbox TSA (RFC 3161 at POST /tsa, CSC signatures/timestamp): its tokens verify in `openssl ts`
// against the sandbox root, nonces are echoed, anything malformed is rejected with the right failure
// info and no token, its certificate is a proper TSA certificate whose validity tests choose and
// rotate, and it can be slowed down or taken down and brought back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import {
  csc,
  errorOf,
  getToken,
  makeDataDir,
  ManualClock,
  startFixture,
  type Fixture,
} from './sandbox-fixture';

const execFileP = promisify(execFile);
const SANDBOX_POLICY = '2.999.3161.1';

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP('openssl', args);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function postTsa(fx: Fixture, body: Buffer, type = 'application/timestamp-query'): Promise<Response> {
  return fetch(fx.sandbox.tsaUrl, {
    method: 'POST',
    headers: { 'Content-Type': type },
    body: new Uint8Array(body),
  });
}

/** A TimeStampReq built with pkijs, for the cases openssl will not make. */
function tsq(opts: {
  oid?: string;
  imprint?: Buffer;
  policy?: string;
  version?: number;
  extension?: boolean;
}): Buffer {
  const req = new pkijs.TimeStampReq({
    version: opts.version ?? 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: opts.oid ?? '2.16.840.1.101.3.4.2.1' }),
      hashedMessage: new asn1js.OctetString({ valueHex: opts.imprint ?? randomBytes(32) }),
    }),
    certReq: true,
    ...(opts.policy === undefined ? {} : { reqPolicy: opts.policy }),
    ...(opts.extension
      ? {
          extensions: [
            new pkijs.Extension({ extnID: '1.2.3.4', critical: false, extnValue: new asn1js.Null().toBER() }),
          ],
        }
      : {}),
  });
  return Buffer.from(req.toSchema().toBER());
}

async function replyText(dir: string, der: Buffer): Promise<string> {
  const file = path.join(dir, `reply-${randomBytes(4).toString('hex')}.tsr`);
  await writeFile(file, der);
  const r = await openssl(['ts', '-reply', '-in', file, '-text']);
  assert.equal(r.code, 0, r.out);
  return r.out;
}

test(
  'a token from POST /tsa verifies in openssl ts against the sandbox root, nonce and imprint included',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const data = path.join(dir, 'data.bin');
      await writeFile(data, 'invoice 2026-0001');
      const query = path.join(dir, 'req.tsq');
      const q = await openssl(['ts', '-query', '-data', data, '-sha256', '-cert', '-out', query]);
      assert.equal(q.code, 0, q.out);
      const res = await postTsa(fx, await readFile(query));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/timestamp-reply');
      const reply = path.join(dir, 'resp.tsr');
      await writeFile(reply, Buffer.from(await res.arrayBuffer()));

      // -queryfile: openssl checks the imprint, the nonce and the policy against the request it made.
      const v = await openssl([
        'ts',
        '-verify',
        '-queryfile',
        query,
        '-in',
        reply,
        '-CAfile',
        fx.sandbox.rootCertPath,
      ]);
      assert.equal(v.code, 0, v.out);
      assert.match(v.out, /Verification: OK/);
      const digest = createHash('sha256').update('invoice 2026-0001').digest('hex');
      const v2 = await openssl([
        'ts',
        '-verify',
        '-digest',
        digest,
        '-in',
        reply,
        '-CAfile',
        fx.sandbox.rootCertPath,
      ]);
      assert.match(v2.out, /Verification: OK/);
      // Another document's digest does not verify.
      const wrong = createHash('sha256').update('invoice 2026-0002').digest('hex');
      const v3 = await openssl([
        'ts',
        '-verify',
        '-digest',
        wrong,
        '-in',
        reply,
        '-CAfile',
        fx.sandbox.rootCertPath,
      ]);
      assert.notEqual(v3.code, 0);

      const text = await replyText(dir, await readFile(reply));
      assert.match(text, /Status: Granted/);
      assert.match(text, new RegExp(`Policy OID: ${SANDBOX_POLICY.replace(/\./g, '\\.')}`));
      assert.match(text, /Nonce: 0x[0-9A-F]+/);
      assert.match(text, /Accuracy: 0x01 seconds/);
      assert.equal(fx.sandbox.stats().tsa, 1);

      // Two tokens never share a serial number.
      const serials = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const r = await postTsa(fx, await readFile(query));
        const t = await replyText(dir, Buffer.from(await r.arrayBuffer()));
        serials.add(/Serial number: (\S+)/.exec(t)![1]!);
      }
      assert.equal(serials.size, 5);
    } finally {
      await fx.close();
    }
  },
);

test(
  'genTime is the sandbox clock, and the policy requested is the sandbox one or refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const clock = new ManualClock(Date.UTC(2027, 0, 15, 2, 30, 0));
    // The TSA certificate is issued on the sandbox clock too, so it is valid at that genTime.
    const fx = await startFixture({ clock });
    try {
      const granted = await postTsa(fx, tsq({ policy: SANDBOX_POLICY }));
      const text = await replyText(dir, Buffer.from(await granted.arrayBuffer()));
      assert.match(text, /Time stamp: Jan 15 02:30:00 2027 GMT/);
      const refused = await replyText(
        dir,
        Buffer.from(await (await postTsa(fx, tsq({ policy: '1.2.3.4.5' }))).arrayBuffer()),
      );
      assert.match(refused, /Status: Rejected/);
      assert.match(refused, /the requested TSA policy is not supported by the TSA/);
      assert.match(refused, /TST info:\s*\n\s*Not included/);
    } finally {
      await fx.close();
    }
  },
);

test(
  'malformed or unsupported requests get HTTP 200 with status rejection and the failure info, never a token',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const cases: { what: string; body: Buffer; failure: RegExp }[] = [
        {
          what: 'not DER',
          body: Buffer.from('hello, TSA'),
          failure: /the data submitted has the wrong format/,
        },
        { what: 'empty body', body: Buffer.alloc(0), failure: /the data submitted has the wrong format/ },
        {
          what: 'DER but not a TimeStampReq',
          body: Buffer.from(new asn1js.Sequence({ value: [new asn1js.Integer({ value: 7 })] }).toBER()),
          failure: /the data submitted has the wrong format/,
        },
        { what: 'trailing bytes', body: Buffer.concat([tsq({}), Buffer.from([0])]), failure: /wrong format/ },
        {
          what: 'SHA-1 imprint',
          body: tsq({ oid: '1.3.14.3.2.26', imprint: randomBytes(20) }),
          failure: /unrecognized or unsupported algorithm identifier/i,
        },
        {
          what: 'short SHA-256 imprint',
          body: tsq({ imprint: randomBytes(31) }),
          failure: /the data submitted has the wrong format/,
        },
        {
          what: 'SHA-512 OID with 32 bytes',
          body: tsq({ oid: '2.16.840.1.101.3.4.2.3' }),
          failure: /wrong format/,
        },
        { what: 'version 2', body: tsq({ version: 2 }), failure: /wrong format/ },
        {
          what: 'an extension',
          body: tsq({ extension: true }),
          failure: /the requested extension is not supported by the TSA/,
        },
      ];
      for (const c of cases) {
        const res = await postTsa(fx, c.body);
        assert.equal(res.status, 200, c.what);
        const text = await replyText(dir, Buffer.from(await res.arrayBuffer()));
        assert.match(text, /Status: Rejected/, c.what);
        assert.match(text, c.failure, `${c.what}: ${text}`);
        assert.match(text, /TST info:\s*\n\s*Not included/, c.what);
      }
      // SHA-384 and SHA-512 imprints of the right length are granted.
      for (const [oid, len] of [
        ['2.16.840.1.101.3.4.2.2', 48],
        ['2.16.840.1.101.3.4.2.3', 64],
      ] as const) {
        const text = await replyText(
          dir,
          Buffer.from(await (await postTsa(fx, tsq({ oid, imprint: randomBytes(len) }))).arrayBuffer()),
        );
        assert.match(text, /Status: Granted/, oid);
      }
      // The wrong media type is refused before the body is read as a request.
      const wrongType = await postTsa(fx, tsq({}), 'application/octet-stream');
      assert.equal(wrongType.status, 415);
      assert.equal((await fetch(fx.sandbox.tsaUrl)).status, 405);
    } finally {
      await fx.close();
    }
  },
);

test(
  'the TSA certificate: critical EKU timeStamping, AIA and CRL DP, validity as asked, rotated on demand',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const dataDir = await makeDataDir();
    after(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startFixture({ tsaCertificateDays: 30 }, dataDir);
    let serial30: string;
    try {
      const pemFile = path.join(dir, 'tsa30.pem');
      await writeFile(pemFile, first.sandbox.tsaCertificatePem);
      assert.equal(await readFile(first.sandbox.tsaCertificatePath, 'utf8'), first.sandbox.tsaCertificatePem);
      const text = (await openssl(['x509', '-in', pemFile, '-noout', '-text'])).out;
      assert.match(text, /X509v3 Extended Key Usage: critical\s*\n\s*Time Stamping\s*\n/);
      assert.match(text, /Digital Signature, Non Repudiation/);
      assert.match(text, new RegExp(`OCSP - URI:${first.sandbox.ocspUrl}`));
      assert.match(text, new RegExp(`URI:${first.sandbox.crlUrl}`));
      assert.equal(
        (
          await openssl([
            'verify',
            '-CAfile',
            first.sandbox.rootCertPath,
            '-purpose',
            'timestampsign',
            pemFile,
          ])
        ).code,
        0,
      );
      const dates = (await openssl(['x509', '-in', pemFile, '-noout', '-startdate', '-enddate'])).out;
      const start = Date.parse(/notBefore=(.+)/.exec(dates)![1]!);
      const end = Date.parse(/notAfter=(.+)/.exec(dates)![1]!);
      assert.ok(Math.abs(end - start - 30 * 86_400_000) < 10 * 60_000, dates);
      serial30 = (await openssl(['x509', '-in', pemFile, '-noout', '-serial'])).out;

      // While running: a long-lived certificate replaces it, and new tokens carry it.
      const longPem = await first.sandbox.rotateTsaCertificate(3650);
      assert.equal(first.sandbox.tsaCertificatePem, longPem);
      const longFile = path.join(dir, 'tsa3650.pem');
      await writeFile(longFile, longPem);
      assert.notEqual((await openssl(['x509', '-in', longFile, '-noout', '-serial'])).out, serial30);
      const digest = randomBytes(32);
      const res = await postTsa(first, tsq({ imprint: digest }));
      const reply = path.join(dir, 'rotated.tsr');
      await writeFile(reply, Buffer.from(await res.arrayBuffer()));
      const v = await openssl([
        'ts',
        '-verify',
        '-digest',
        digest.toString('hex'),
        '-in',
        reply,
        '-CAfile',
        first.sandbox.rootCertPath,
      ]);
      assert.match(v.out, /Verification: OK/);
      const tokenCerts = await openssl([
        'ts',
        '-reply',
        '-in',
        reply,
        '-token_out',
        '-out',
        path.join(dir, 'tok.der'),
      ]);
      assert.equal(tokenCerts.code, 0, tokenCerts.out);
      const p7 = await openssl([
        'pkcs7',
        '-inform',
        'DER',
        '-in',
        path.join(dir, 'tok.der'),
        '-print_certs',
        '-noout',
      ]);
      assert.match(p7.out, /subject=C ?= ?JP, O ?= ?Sealer Sandbox, CN ?= ?Sealer Sandbox TSA/);
      await assert.rejects(first.sandbox.rotateTsaCertificate(0), /whole number of days/);
    } finally {
      await first.close();
    }
    // A restart asking for another validity gets a new certificate; asking for the same keeps it.
    const second = await startFixture({ tsaCertificateDays: 30, pkiBaseUrl: 'http://pki.example' }, dataDir);
    const pem30 = second.sandbox.tsaCertificatePem;
    await second.close();
    const third = await startFixture({ tsaCertificateDays: 30, pkiBaseUrl: 'http://pki.example' }, dataDir);
    try {
      assert.equal(
        third.sandbox.tsaCertificatePem,
        pem30,
        'same days and URLs: the stored certificate stands',
      );
    } finally {
      await third.close();
    }
  },
);

test(
  'CSC signatures/timestamp (v2 and v1): a TimeStampToken over the hash, nonce echoed, strict parameters',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const token = await getToken(fx.sandbox, 'sakura-app');
      const hash = createHash('sha256').update('signature value').digest();
      const nonce = 'f1e2d3c4b5a697887766554433221100';
      for (const version of ['v2', 'v1']) {
        const res = await fetch(`${fx.sandbox.oauth2Url}/csc/${version}/signatures/timestamp`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({
            hash: hash.toString('base64'),
            hashAlgo: '2.16.840.1.101.3.4.2.1',
            nonce,
            clientData: 'x',
          }),
        });
        assert.equal(res.status, 200, version);
        const body = (await res.json()) as { timestamp: string };
        const file = path.join(dir, `token-${version}.der`);
        await writeFile(file, Buffer.from(body.timestamp, 'base64'));
        const v = await openssl([
          'ts',
          '-verify',
          '-token_in',
          '-in',
          file,
          '-digest',
          hash.toString('hex'),
          '-CAfile',
          fx.sandbox.rootCertPath,
        ]);
        assert.match(v.out, /Verification: OK/, `${version}: ${v.out}`);
        const text = (await openssl(['ts', '-reply', '-token_in', '-in', file, '-text'])).out;
        assert.match(text, new RegExp(`Nonce: 0x${nonce.toUpperCase()}`), text);
      }
      assert.equal(fx.sandbox.stats().timestamp, 2);

      const info = await csc(fx.sandbox, 'info', undefined, {});
      assert.ok((info.body.methods as string[]).includes('signatures/timestamp'));

      const base = { hash: hash.toString('base64'), hashAlgo: '2.16.840.1.101.3.4.2.1' };
      const refusals: [string, unknown, RegExp][] = [
        ['no hash', { hashAlgo: base.hashAlgo }, /Missing \(or invalid type\) string parameter hash/],
        ['no hashAlgo', { hash: base.hash }, /Missing \(or invalid type\) string parameter hashAlgo/],
        ['bad Base64', { ...base, hash: 'not base64!' }, /Invalid parameter hash/],
        ['short hash', { ...base, hash: randomBytes(20).toString('base64') }, /Invalid parameter hash/],
        ['SHA-1', { ...base, hashAlgo: '1.3.14.3.2.26' }, /Invalid parameter hashAlgo/],
        ['bad nonce', { ...base, nonce: 'xyz' }, /Invalid parameter nonce/],
      ];
      for (const [what, body, description] of refusals) {
        const res = await csc(fx.sandbox, 'signatures/timestamp', token, body);
        assert.equal(res.status, 400, what);
        assert.equal(errorOf(res).error, 'invalid_request', what);
        assert.match(errorOf(res).description, description, what);
      }
      assert.equal((await csc(fx.sandbox, 'signatures/timestamp', undefined, base)).status, 401);
    } finally {
      await fx.close();
    }
  },
);

test(
  'TSA outages and latency: a switch, fault rules on tsa and signatures/timestamp, tsaLatencyMs',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fx = await startFixture({ tsaLatencyMs: 300 });
    try {
      const token = await getToken(fx.sandbox, 'fuji-app');
      const ts = { hash: randomBytes(32).toString('base64'), hashAlgo: '2.16.840.1.101.3.4.2.1' };
      const started = Date.now();
      assert.equal((await postTsa(fx, tsq({}))).status, 200);
      assert.ok(Date.now() - started >= 290, 'tsaLatencyMs delays the answer');

      fx.sandbox.setTsaOutage(true);
      assert.equal((await postTsa(fx, tsq({}))).status, 503);
      assert.equal((await csc(fx.sandbox, 'signatures/timestamp', token, ts)).status, 503);
      // The rest of the provider is up.
      assert.equal((await csc(fx.sandbox, 'credentials/list', token, {})).status, 200);
      fx.sandbox.setTsaOutage(false);
      assert.equal((await postTsa(fx, tsq({}))).status, 200);

      // Fault rules: two 503s at /tsa, then it recovers; a `csc` rule does not reach /tsa.
      fx.sandbox.faults.replace('tsa:503=1', { resetCounts: true });
      fx.sandbox.faults.replace({
        rules: [{ endpoint: 'tsa', fault: 'status', status: 503, rate: 1, max: 2 }],
      });
      assert.equal((await postTsa(fx, tsq({}))).status, 503);
      assert.equal((await postTsa(fx, tsq({}))).status, 503);
      assert.equal((await postTsa(fx, tsq({}))).status, 200);
      fx.sandbox.faults.replace('timestamp:503=1,csc:latency:1ms=1');
      assert.equal((await csc(fx.sandbox, 'signatures/timestamp', token, ts)).status, 503);
      assert.equal((await postTsa(fx, tsq({}))).status, 200);
      const state = fx.sandbox.faults.state();
      assert.equal(state.injected.tsa?.['status:503'], 2);
      assert.equal(state.injected['signatures/timestamp']?.['status:503'], 1);
      fx.sandbox.faults.replace({ rules: [] });
      assert.equal((await csc(fx.sandbox, 'signatures/timestamp', token, ts)).status, 200);
    } finally {
      await fx.close();
    }
  },
);

test(
  'past its TSA certificate the TSA refuses (systemFailure) until the certificate is rotated',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const fx = await startFixture({ clock, tsaCertificateDays: 30 });
    try {
      const ts = { hash: randomBytes(32).toString('base64'), hashAlgo: '2.16.840.1.101.3.4.2.1' };
      clock.advance(31 * 86_400_000);
      const token = await getToken(fx.sandbox, 'sakura-app'); // one of the sandbox's new month
      const refused = await replyText(dir, Buffer.from(await (await postTsa(fx, tsq({}))).arrayBuffer()));
      assert.match(refused, /Status: Rejected/);
      assert.match(refused, /the request cannot be handled due to system failure/);
      const cscRefused = await csc(fx.sandbox, 'signatures/timestamp', token, ts);
      assert.equal(cscRefused.status, 500);
      assert.match(errorOf(cscRefused).description, /TSA certificate is not valid/);

      await fx.sandbox.rotateTsaCertificate(3650);
      const granted = await replyText(dir, Buffer.from(await (await postTsa(fx, tsq({}))).arrayBuffer()));
      assert.match(granted, /Status: Granted/);
      assert.equal((await csc(fx.sandbox, 'signatures/timestamp', token, ts)).status, 200);
    } finally {
      await fx.close();
    }
  },
);
