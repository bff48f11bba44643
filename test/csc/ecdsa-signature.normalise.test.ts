// Raw r||s ECDSA values become DER ECDSA-Sig-Values that node:crypto verifies; DER passes unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { isDerEcdsaSignature, normaliseEcdsaSignature, rawEcdsaToDer } from '../../src/csc';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

test('raw r||s from a P-256 key becomes DER that node:crypto verifies', { timeout: TEST_TIMEOUT_MS }, () => {
  for (let i = 0; i < 50; i++) {
    const msg = crypto.randomBytes(40);
    const raw = crypto.sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    assert.equal(raw.length, 64);
    const der = normaliseEcdsaSignature(raw, 32);
    assert.ok(isDerEcdsaSignature(der, 33));
    assert.ok(crypto.verify('sha256', msg, publicKey, der), `signature ${i} verifies as DER`);
  }
});

test('a DER signature is returned byte for byte', { timeout: TEST_TIMEOUT_MS }, () => {
  for (let i = 0; i < 50; i++) {
    const der = crypto.sign('sha256', crypto.randomBytes(20), privateKey);
    assert.ok(isDerEcdsaSignature(der, 33));
    assert.deepEqual(normaliseEcdsaSignature(der, 32), der);
  }
});

test(
  'integers with the high bit set get a zero byte; leading zeros are dropped',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const r = Buffer.alloc(32, 0);
    r[31] = 0x05; // r = 5: one content byte
    const s = Buffer.alloc(32, 0xff); // high bit set: 33 content bytes
    const der = rawEcdsaToDer(Buffer.concat([r, s]));
    assert.equal(der.toString('hex'), '3026' + '020105' + '022100' + 'ff'.repeat(32));
    assert.ok(isDerEcdsaSignature(der));
  },
);

test('values that are neither DER nor raw are refused', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.throws(() => normaliseEcdsaSignature(Buffer.alloc(63, 1), 32), /neither DER nor raw/);
  assert.throws(() => normaliseEcdsaSignature(Buffer.alloc(0)), /neither DER nor raw/);
  // Non-minimal INTEGER (00 before a byte without the high bit) is not DER.
  assert.equal(isDerEcdsaSignature(Buffer.from('3008020200010202007f', 'hex')), false);
  // Trailing garbage after the SEQUENCE is not DER.
  const der = crypto.sign('sha256', Buffer.from('x'), privateKey);
  assert.equal(isDerEcdsaSignature(Buffer.concat([der, Buffer.from([0])])), false);
});
