// One bad provider answer must not fail a batch for good: a signHash reply with the wrong number of
// signatures, or an ECDSA value that is neither DER nor raw r||s, fails that batch as transient (the
// job's backoff sends its invoices again), and the SAD it was sent under is offered no more (the
// provider may have spent its count), so the next batch is authorised afresh. A tiny local server plays
// the provider, because the sandbox never answers badly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BatchSigner, CscClient, CscError, OID, SadManager, type CredentialFacts } from '../../src/csc';

let server: http.Server;
let origin: string;
/** The SAD each signHash call carried, in order. */
const sadsSent: string[] = [];
let authorizations = 0;
/** What the n-th signHash call (1-based) answers, given the number of hashes it carried. */
let answer: (n: number, hashes: number) => unknown = () => ({});

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      // The token request is a form; the CSC calls are JSON.
      const body = (req.headers['content-type'] ?? '').includes('json')
        ? (JSON.parse(text) as Record<string, unknown>)
        : {};
      const reply = (value: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      switch (req.url) {
        case '/csc/v2/info':
          return reply({ specs: '2.0.0.2', authType: ['oauth2client'], methods: [] });
        case '/oauth2/token':
          return reply({ access_token: 'service-token', token_type: 'Bearer', expires_in: 3600 });
        case '/csc/v2/credentials/authorize':
          authorizations++;
          return reply({ SAD: `sad-${authorizations}`, expiresIn: 3600 });
        case '/csc/v2/signatures/signHash':
          sadsSent.push(String(body.SAD));
          return reply(answer(sadsSent.length, (body.hashes as unknown[]).length));
        default:
          res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const base: CredentialFacts = {
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
const ecdsa: CredentialFacts = {
  ...base,
  keyAlgorithm: 'ecdsa',
  signAlgoOid: OID.ecdsaWithSHA256,
  ecCurve: 'prime256v1',
};
const goodSig = (credential: CredentialFacts) =>
  (credential.keyAlgorithm === 'rsa' ? Buffer.alloc(256, 5) : Buffer.alloc(64, 5)).toString('base64');

const cases: Array<[string, CredentialFacts, (hashes: number) => unknown, RegExp]> = [
  [
    'one signature too few',
    base,
    (hashes) => ({ signatures: Array(hashes - 1).fill(goodSig(base)) }),
    /provider returned 1 signatures for 2 hashes/,
  ],
  [
    'an ECDSA value of 63 bytes',
    ecdsa,
    (hashes) => ({ signatures: Array(hashes).fill(Buffer.alloc(63, 9).toString('base64')) }),
    /neither DER nor raw r\|\|s/,
  ],
];

for (const [name, credential, bad, said] of cases) {
  test(
    `${name}: the batch fails as transient, its SAD is dropped, the next batch is authorised afresh and signed`,
    { timeout: 120_000 },
    async () => {
      sadsSent.length = 0;
      authorizations = 0;
      answer = (n, hashes) =>
        n === 1 ? bad(hashes) : { signatures: Array(hashes).fill(goodSig(credential)) };
      const client = new CscClient({
        baseUrl: `${origin}/csc/v2`,
        auth: { kind: 'client_credentials', clientId: 'c', clientSecret: 's' },
        timeoutMs: 2000,
      });
      const sadManager = new SadManager({
        client,
        credential,
        factors: () => Promise.resolve({ pin: '1234' }),
      });
      const batch = new BatchSigner({ client, credential, sadManager, batchSize: 2, maxInFlight: 1 });

      const first = await Promise.allSettled([
        batch.sign(Buffer.alloc(32, 1)),
        batch.sign(Buffer.alloc(32, 2)),
      ]);
      for (const r of first) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as CscError;
        assert.ok(err instanceof CscError);
        assert.equal(err.kind, 'transient');
        assert.equal(err.retryable, true);
        assert.match(err.message, /credential cred-1, batch of 2: /);
        assert.match(err.message, said);
      }
      // The SAD had 8 signatures left by our count; the provider may have spent them: not offered again.
      assert.equal(sadManager.unusedSignatures(), 0);

      const second = await Promise.all([batch.sign(Buffer.alloc(32, 3)), batch.sign(Buffer.alloc(32, 4))]);
      assert.equal(second.length, 2);
      assert.equal(authorizations, 2);
      assert.deepEqual(sadsSent, ['sad-1', 'sad-2']);
      assert.deepEqual(
        { failed: batch.stats().failedBatches, signatures: batch.stats().signatures },
        { failed: 1, signatures: 2 },
      );
      await batch.close();
    },
  );
}
