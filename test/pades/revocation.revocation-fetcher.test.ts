import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RevocationError, RevocationFetcher, type RevocationEvidence } from '../../src/pades';
import { certificateFacts } from '../../src/pades/certificate-facts';
import { crlStatusFor, parseCrl } from '../../src/pades/crl';
import {
  createRevocationPki,
  flipSignatureBit,
  type LeafName,
  type RevocationPki,
} from '../helpers/revocation-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: RevocationPki;
before(async () => {
  pki = await createRevocationPki();
});
after(() => pki?.close());

function evidenceFor(leaf: LeafName, fetcher = new RevocationFetcher()): Promise<RevocationEvidence> {
  return fetcher.evidenceFor(pki.leaves[leaf].der, pki.root.der);
}

/** What `openssl ocsp` itself makes of a response we keep (it verifies against the root only). */
function opensslReadsOcsp(der: Buffer, leaf: LeafName): string {
  const file = join(pki.dir, `${leaf}-kept.ocsp`);
  writeFileSync(file, der);
  return pki.openssl([
    'ocsp',
    '-respin',
    file,
    '-CAfile',
    pki.root.pemPath,
    '-issuer',
    pki.root.pemPath,
    '-cert',
    pki.leaves[leaf].pemPath,
    '-no_nonce', // our request's nonce was checked by us; openssl would compare its own
  ]);
}

test(
  'a good certificate with an OCSP responder gets a verified OCSP response openssl accepts',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('ocspGood');
    assert.equal(evidence.kind, 'ocsp');
    assert.deepEqual(evidence.status, { status: 'good' });
    assert.equal(evidence.url, `${pki.base}/ocsp/ca`);
    assert.deepEqual(evidence.extraCertsDer, [], 'the CA signed it itself: no responder certificate needed');
    assert.ok(evidence.nextUpdate && evidence.nextUpdate > evidence.thisUpdate);
    const out = opensslReadsOcsp(evidence.der, 'ocspGood');
    assert.match(out, /Response verify OK/);
    assert.match(out, /ocspGood\.pem: good/);
  },
);

test(
  'a revoked certificate comes back revoked with its time and reason, as openssl reads it too',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('ocspRevoked');
    assert.equal(evidence.status.status, 'revoked');
    assert.ok(evidence.status.status === 'revoked');
    assert.equal(evidence.status.reason, 'keyCompromise');
    const out = opensslReadsOcsp(evidence.der, 'ocspRevoked');
    assert.match(out, /Response verify OK/);
    assert.match(out, /Reason: keyCompromise/);
    // openssl prints e.g. "Revocation Time: Dec  1 13:20:00 2026 GMT"
    const printed = /Revocation Time: (.+ GMT)/.exec(out)?.[1];
    assert.ok(printed, out);
    assert.equal(evidence.status.revokedAt.getTime(), new Date(printed).getTime());
  },
);

test(
  'a certificate its CA never recorded is unknown (and has no CRL to fall back on)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('ocspUnknown');
    assert.equal(evidence.kind, 'ocsp');
    assert.deepEqual(evidence.status, { status: 'unknown' });
  },
);

test(
  'a delegated responder: its certificate is checked and kept beside the response',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('delegatedGood');
    assert.deepEqual(evidence.status, { status: 'good' });
    assert.equal(evidence.extraCertsDer.length, 1);
    assert.ok(evidence.extraCertsDer[0]!.equals(pki.responder.der));
    const out = opensslReadsOcsp(evidence.der, 'delegatedGood');
    assert.match(out, /Response verify OK/);
  },
);

test(
  'a delegated responder is refused when the response is checked against another issuer',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The responder certificate was issued by the root, not by the "issuer" given here (the leaf
    // itself stands in for a CA): a responder may only answer for its own CA.
    const fetcher = new RevocationFetcher();
    await assert.rejects(
      fetcher.evidenceFor(pki.leaves.delegatedGood.der, pki.leaves.ocspGood.der),
      (err: unknown) => err instanceof RevocationError && err.kind === 'invalid',
    );
  },
);

test(
  'a response whose signature was altered is rejected as invalid, as openssl rejects it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(evidenceFor('ocspTampered'), (err: unknown) => {
      assert.ok(err instanceof RevocationError);
      assert.equal(err.kind, 'invalid');
      assert.match(err.message, /ocspTampered/);
      assert.match(err.message, /signature does not verify/);
      return true;
    });
    // The same alteration, checked by openssl, of a response that verified before.
    const good = await evidenceFor('ocspGood');
    const file = join(pki.dir, 'tampered.ocsp');
    writeFileSync(file, flipSignatureBit(good.der));
    assert.throws(
      () => pki.openssl(['ocsp', '-respin', file, '-CAfile', pki.root.pemPath]),
      /Response Verify Failure|signature failure|bad signature/i,
    );
  },
);

test("a replayed response (another request's nonce) is rejected", { timeout: TEST_TIMEOUT_MS }, async () => {
  const first = await evidenceFor('ocspReplayed'); // the front records this answer...
  assert.deepEqual(first.status, { status: 'good' });
  await assert.rejects(evidenceFor('ocspReplayed'), /nonce differs/); // ...and returns it again
});

test(
  'a response checked with a clock past its nextUpdate is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const twoDaysOn = () => new Date(Date.now() + 2 * 86400_000);
    await assert.rejects(
      evidenceFor('ocspGood', new RevocationFetcher({ now: twoDaysOn })),
      (err: unknown) =>
        err instanceof RevocationError &&
        err.kind === 'invalid' &&
        /nextUpdate .* has passed/.test(err.message),
    );
    const anHourAgo = () => new Date(Date.now() - 3600_000);
    await assert.rejects(
      evidenceFor('ocspGood', new RevocationFetcher({ now: anHourAgo })),
      /thisUpdate .* is in the future/,
    );
  },
);

test('CertIDs hashed with SHA-256 work as well as SHA-1', { timeout: TEST_TIMEOUT_MS }, async () => {
  const fetcher = new RevocationFetcher({ certIdHash: 'sha256' });
  assert.deepEqual((await evidenceFor('ocspGood', fetcher)).status, { status: 'good' });
  assert.equal((await evidenceFor('ocspRevoked', fetcher)).status.status, 'revoked');
});

test(
  '100 concurrent askers for one certificate make one OCSP request; later askers hit the cache',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fetcher = new RevocationFetcher();
    const before = pki.hits.get('/ocsp/counted') ?? 0;
    const all = await Promise.all(Array.from({ length: 100 }, () => evidenceFor('ocspCounted', fetcher)));
    assert.equal((pki.hits.get('/ocsp/counted') ?? 0) - before, 1, 'requests that reached the responder');
    assert.ok(all.every((e) => e === all[0]));
    await evidenceFor('ocspCounted', fetcher);
    assert.deepEqual(fetcher.stats, { ocspRequests: 1, crlRequests: 0, cacheHits: 100 });
  },
);

test('a failed fetch is not cached: the next ask tries again', { timeout: TEST_TIMEOUT_MS }, async () => {
  const fetcher = new RevocationFetcher();
  pki.setCaResponderUp(false);
  try {
    await assert.rejects(evidenceFor('ocspGood', fetcher), (err: unknown) => {
      assert.ok(err instanceof RevocationError);
      assert.equal(err.kind, 'unavailable');
      assert.match(err.message, /HTTP 503/);
      return true;
    });
  } finally {
    pki.setCaResponderUp(true);
  }
  assert.deepEqual((await evidenceFor('ocspGood', fetcher)).status, { status: 'good' });
  assert.equal(fetcher.stats.ocspRequests, 2);
});

test(
  'CRL only: good and revoked (time and reason) from one download, which openssl verifies',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fetcher = new RevocationFetcher();
    const before = pki.hits.get('/root.crl') ?? 0;
    const [good, revoked] = await Promise.all([
      evidenceFor('crlGood', fetcher),
      evidenceFor('crlRevoked', fetcher),
    ]);
    assert.equal((pki.hits.get('/root.crl') ?? 0) - before, 1, 'one download for both certificates');
    assert.equal(fetcher.stats.crlRequests, 1);
    assert.equal(good.kind, 'crl');
    assert.deepEqual(good.status, { status: 'good' });
    assert.equal(revoked.status.status, 'revoked');
    assert.ok(revoked.status.status === 'revoked');
    assert.equal(revoked.status.reason, 'cessationOfOperation');
    assert.ok(good.der.equals(revoked.der));

    const file = join(pki.dir, 'kept.crl');
    writeFileSync(file, good.der);
    const text = pki.openssl([
      'crl',
      '-inform',
      'DER',
      '-in',
      file,
      '-CAfile',
      pki.root.pemPath,
      '-noout',
      '-text',
    ]);
    const serial = pki
      .openssl(['x509', '-in', pki.leaves.crlRevoked.pemPath, '-noout', '-serial'])
      .trim()
      .split('=')[1]!;
    const entry = new RegExp(`Serial Number: ${serial}\\s+Revocation Date: (.+ GMT)`).exec(text);
    assert.ok(entry, text);
    assert.match(text, /verify OK/);
    assert.equal(revoked.status.revokedAt.getTime(), new Date(entry[1]!).getTime());
  },
);

test('a CRL served as PEM is kept as DER', { timeout: TEST_TIMEOUT_MS }, async () => {
  const fetcher = new RevocationFetcher();
  const fromPem = await evidenceFor('crlPem', fetcher);
  const fromDer = await evidenceFor('crlGood', fetcher);
  assert.deepEqual(fromPem.status, { status: 'good' });
  assert.equal(fromPem.url, `${pki.base}/root-pem.crl`);
  assert.ok(fromPem.der.equals(fromDer.der), 'the same CRL, as the DER the other URL serves');
});

test(
  'when the OCSP responder is down the CRL is used, and says why',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('fallback', new RevocationFetcher({ timeoutMs: 5000 }));
    assert.equal(evidence.kind, 'crl');
    assert.deepEqual(evidence.status, { status: 'good' });
    assert.match(evidence.ocspProblem ?? '', /unreachable/);
  },
);

test(
  'a certificate naming no revocation source is refused, saying so',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(evidenceFor('none'), (err: unknown) => {
      assert.ok(err instanceof RevocationError);
      assert.equal(err.kind, 'invalid');
      assert.match(err.message, /CN=none serial [0-9A-F]+ names neither an OCSP responder \(AIA\) nor/);
      return true;
    });
  },
);

test(
  'an OCSP answer that is not an OCSPResponse is invalid, and the CRL is used instead',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const evidence = await evidenceFor('garbage');
    assert.equal(evidence.kind, 'crl');
    assert.deepEqual(evidence.status, { status: 'good' });
    assert.match(evidence.ocspProblem ?? '', /CN=garbage serial [0-9A-F]+: not a DER OCSPResponse/);
  },
);

test('a CRL whose signature was altered is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const good = await evidenceFor('crlGood');
  const tampered = Buffer.from(good.der);
  tampered[tampered.length - 1]! ^= 0x01; // the signature BIT STRING ends the CertificateList
  const parsed = parseCrl(tampered, 'test://tampered.crl');
  assert.throws(
    () =>
      crlStatusFor(
        parsed,
        certificateFacts(pki.leaves.crlGood.der),
        certificateFacts(pki.root.der),
        new Date(),
        0,
      ),
    (err: unknown) =>
      err instanceof RevocationError &&
      err.kind === 'invalid' &&
      /signature does not verify/.test(err.message),
  );
  const file = join(pki.dir, 'tampered.crl');
  writeFileSync(file, tampered);
  // openssl crl exits 0 either way; its verdict is the text.
  assert.match(
    pki.openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', pki.root.pemPath, '-noout']),
    /verify failure/,
  );
});

test(
  'cached evidence whose nextUpdate has passed is fetched again, not served',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    let clock = new Date();
    const fetcher = new RevocationFetcher({ now: () => clock });
    await evidenceFor('ocspGood', fetcher);
    await evidenceFor('ocspGood', fetcher);
    assert.deepEqual(fetcher.stats, { ocspRequests: 1, crlRequests: 0, cacheHits: 1 });
    clock = new Date(clock.getTime() + 25 * 3600_000); // the responder's nextUpdate is a day on
    // The new answer is no fresher than the clock, so it is refused too; what matters is that it was asked.
    await assert.rejects(evidenceFor('ocspGood', fetcher), /nextUpdate .* has passed/);
    assert.deepEqual(fetcher.stats, { ocspRequests: 2, crlRequests: 0, cacheHits: 1 });
  },
);
