// The key-encryption key: 32 bytes as hex or base64, from env: or file:, and never echoed when wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FactorVaultError, JobConfigError, loadKek, parseKek } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';

test('a KEK is read as 64 hex characters, base64 or base64url of 32 bytes', () => {
  const key = crypto.randomBytes(32);
  assert.deepEqual(parseKek(key.toString('hex')), key);
  assert.deepEqual(parseKek(key.toString('hex').toUpperCase()), key);
  assert.deepEqual(parseKek(`${key.toString('base64')}\n`), key);
  assert.deepEqual(parseKek(key.toString('base64url')), key);
});

test('anything else is refused with a message that does not repeat it', () => {
  for (const text of [
    crypto.randomBytes(16).toString('hex'),
    crypto.randomBytes(31).toString('base64'),
    crypto.randomBytes(33).toString('base64'),
    `${crypto.randomBytes(32).toString('hex').slice(0, 63)}g`,
    'correct horse battery staple',
    '',
  ]) {
    assert.throws(
      () => parseKek(text),
      (err: unknown) => {
        assert.ok(err instanceof FactorVaultError);
        assert.match(err.message, /32 bytes, given as 64 hex characters or as base64/);
        if (text) assert.ok(!err.message.includes(text.trim()));
        return true;
      },
    );
  }
});

test('loadKek resolves env: and file: references and names the reference, not the value, when wrong', async () => {
  const dir = await tempDir();
  const key = crypto.randomBytes(32);
  await fs.writeFile(path.join(dir, 'kek'), key.toString('base64'));
  assert.deepEqual(await loadKek('file:kek', dir), key);
  assert.deepEqual(await loadKek('env:MY_KEK', dir, { MY_KEK: key.toString('hex') }), key);

  await assert.rejects(() => loadKek('env:MY_KEK', dir, {}), JobConfigError);
  await assert.rejects(
    () => loadKek('env:MY_KEK', dir, { MY_KEK: 'not-a-key-at-all' }),
    (err: unknown) => {
      assert.ok(err instanceof FactorVaultError);
      assert.match(err.message, /^key-encryption key env:MY_KEK: /);
      assert.ok(!err.message.includes('not-a-key-at-all'));
      return true;
    },
  );
});
