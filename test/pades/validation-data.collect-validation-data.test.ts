import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  assertUsable,
  CertificateUnusableError,
  collectValidationData,
  RevocationFetcher,
} from '../../src/pades';
import { createRevocationPki, type RevocationPki } from '../helpers/revocation-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: RevocationPki;
before(async () => {
  pki = await createRevocationPki();
});
after(() => pki?.close());

const sha = (der: Buffer) => createHash('sha256').update(der).digest('hex');

test(
  'collectValidationData: every distinct certificate once, evidence for each non-anchor, none for a nocheck responder',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { ocspGood, delegatedGood, crlGood } = pki.leaves;
    const root = pki.root.der;
    const fetcher = new RevocationFetcher();
    const chains = [
      [ocspGood.der, root],
      [delegatedGood.der, root],
      [crlGood.der, root],
    ];
    const data = await collectValidationData(chains, fetcher);

    const names = new Map([
      [sha(ocspGood.der), 'ocspGood'],
      [sha(delegatedGood.der), 'delegatedGood'],
      [sha(crlGood.der), 'crlGood'],
      [sha(root), 'root'],
      [sha(pki.responder.der), 'responder'],
    ]);
    assert.deepEqual(data.certs.map((c) => names.get(sha(c))).sort(), [
      'crlGood',
      'delegatedGood',
      'ocspGood',
      'responder',
      'root',
    ]);
    assert.deepEqual([...data.byCertificate.keys()].map((k) => names.get(k)).sort(), [
      'crlGood',
      'delegatedGood',
      'ocspGood',
    ]);
    assert.equal(data.byCertificate.get(sha(ocspGood.der))?.kind, 'ocsp');
    assert.equal(data.byCertificate.get(sha(crlGood.der))?.kind, 'crl');
    assert.equal(data.ocsps.length, 2);
    assert.equal(data.crls.length, 1);
    assert.ok(data.ocsps.includes(data.byCertificate.get(sha(ocspGood.der))!.der));

    // The next invoice of the night asks again: nothing is fetched twice.
    const requests = { ...fetcher.stats };
    await collectValidationData(chains, fetcher);
    assert.equal(fetcher.stats.ocspRequests, requests.ocspRequests);
    assert.equal(fetcher.stats.crlRequests, requests.crlRequests);
    assert.equal(fetcher.stats.cacheHits, requests.cacheHits + 3);
  },
);

test(
  'a revoked signer certificate is unusable, with subject, serial, time and reason in the message',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fetcher = new RevocationFetcher();
    const chain = [pki.leaves.ocspRevoked.der, pki.root.der];
    await assert.rejects(collectValidationData([chain], fetcher), (err: unknown) => {
      assert.ok(err instanceof CertificateUnusableError);
      assert.equal(err.reason, 'revoked');
      assert.equal(err.revocationReason, 'keyCompromise');
      assert.equal(err.certificateSha256, sha(pki.leaves.ocspRevoked.der));
      assert.match(
        err.message,
        /^certificate C=JP, O=Example KK, CN=ocspRevoked serial [0-9A-F]+ was revoked at \d{4}-\d\d-\d\dT[\d:.]+Z \(keyCompromise\)$/,
      );
      return true;
    });
    // Collected anyway when asked not to judge: the evidence itself is fine.
    const data = await collectValidationData([chain], fetcher, { requireUsable: false });
    assert.equal(data.byCertificate.get(sha(pki.leaves.ocspRevoked.der))?.status.status, 'revoked');
    assert.equal(fetcher.stats.ocspRequests, 1);
  },
);

test(
  'assertUsable: expired, not yet valid and unknown-to-the-CA certificates, by an injected clock',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fetcher = new RevocationFetcher();
    const good = pki.leaves.ocspGood.der;
    const evidence = await fetcher.evidenceFor(good, pki.root.der);
    assert.doesNotThrow(() => assertUsable(good, evidence, new Date()));
    const in40Days = new Date(Date.now() + 40 * 86400_000); // openssl ca issued them for 30 days
    assert.throws(
      () => assertUsable(good, evidence, in40Days),
      (err: unknown) =>
        err instanceof CertificateUnusableError &&
        err.reason === 'expired' &&
        /CN=ocspGood serial .* expired at /.test(err.message),
    );
    const yesterday = new Date(Date.now() - 86400_000);
    assert.throws(
      () => assertUsable(good, evidence, yesterday),
      (err: unknown) => err instanceof CertificateUnusableError && err.reason === 'not-yet-valid',
    );
    const unknown = await fetcher.evidenceFor(pki.leaves.ocspUnknown.der, pki.root.der);
    assert.throws(
      () => assertUsable(pki.leaves.ocspUnknown.der, unknown, new Date()),
      (err: unknown) => err instanceof CertificateUnusableError && err.reason === 'status-unknown',
    );
  },
);
