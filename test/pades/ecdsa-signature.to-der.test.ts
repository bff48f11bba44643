import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, verify, X509Certificate } from 'node:crypto';
import { ecdsaSignatureToDer, PadesError } from '../../src/pades';
import { createTestPki, TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

test(
  'ecdsaSignatureToDer turns raw r||s into a DER signature node:crypto verifies',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const key = new X509Certificate(pki.ecdsa.certDer).publicKey;
    for (let i = 0; i < 25; i++) {
      const data = randomBytes(64);
      const hash = createHash('sha256').update(data).digest();
      const raw = pki.ecdsa.signDigest(hash, { ecdsaFormat: 'raw' });
      assert.equal(raw.length, 64);
      const der = ecdsaSignatureToDer(raw);
      assert.equal(der[0], 0x30);
      assert.ok(verify('sha256', data, key, der), 'DER from raw verifies');
      assert.ok(verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, raw), 'the raw form was r||s');
    }
  },
);

test('ecdsaSignatureToDer returns a DER signature unchanged', { timeout: TEST_TIMEOUT_MS }, () => {
  const der = pki.ecdsa.signDigest(randomBytes(32), { ecdsaFormat: 'der' });
  assert.ok(ecdsaSignatureToDer(der).equals(der));
});

test(
  'ecdsaSignatureToDer writes minimal INTEGERs: a sign byte for high r, none for leading zeros',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const raw = Buffer.concat([
      Buffer.alloc(1, 0x80),
      Buffer.alloc(31, 1),
      Buffer.alloc(2, 0),
      Buffer.alloc(30, 2),
    ]);
    const der = ecdsaSignatureToDer(raw);
    assert.equal(
      der.toString('hex'),
      `3043022100${raw.subarray(0, 32).toString('hex')}021e${'02'.repeat(30)}`,
    );
  },
);

test('ecdsaSignatureToDer rejects what is neither form', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.throws(() => ecdsaSignatureToDer(randomBytes(63)), PadesError);
  assert.throws(() => ecdsaSignatureToDer(Buffer.alloc(64)), /r or s = 0/);
  // Non-minimal INTEGER (leading 00 before a byte < 0x80) is not DER, and 9 bytes is not raw.
  assert.throws(
    () => ecdsaSignatureToDer(Buffer.from('3007020200010201 01'.replace(/ /g, ''), 'hex')),
    PadesError,
  );
});
