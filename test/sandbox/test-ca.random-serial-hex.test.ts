// Serial numbers of the test CA: positive, 16 bytes, and never with a leading zero digit, so every
// tool (node:crypto, @peculiar/x509, OpenSSL, CSC cert/serialNumber) renders the same hex digits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomSerialHex } from '../../src/sandbox/test-ca';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test('randomSerialHex gives 32 hex digits starting 1-7, all distinct', { timeout: TEST_TIMEOUT_MS }, () => {
  const serials = Array.from({ length: 2000 }, () => randomSerialHex());
  for (const s of serials) assert.match(s, /^[1-7][0-9a-f]{31}$/);
  assert.equal(new Set(serials).size, serials.length);
  const firstDigits = new Set(serials.map((s) => s[0]));
  assert.equal(firstDigits.size, 7); // the whole 0x10..0x7f range is used
});
