// The key-encryption key: 32 bytes as hex or base64, from env: or file:, and never echoed when wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FactorVaultError, loadKek, parseKek } from '../../src/custody';
import { JobConfigError } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'a KEK is read as 64 hex characters, base64 or base64url of 32 bytes',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const key = crypto.randomBytes(32);
    assert.deepEqual(parseKek(key.toString('hex')), key);
    assert.deepEqual(parseKek(key.toString('hex').toUpperCase()), key);
    assert.deepEqual(parseKek(`${key.toString('base64')}\n`), key);
    assert.deepEqual(parseKek(key.toString('base64url')), key);
  },
);

test('anything else is refused with a message that does not repeat it', { timeout: TEST_TIMEOUT_MS }, () => {
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

test(
  'loadKek resolves env: and file: references and names the reference, not the value, when wrong',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const key = crypto.randomBytes(32);
    await fs.writeFile(path.join(dir, 'kek'), key.toString('base64'), { mode: 0o600 });
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
  },
);

test(
  'a KEK file its group or others may read or write is refused, as ssh refuses such a key',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const key = crypto.randomBytes(32);
    const file = path.join(dir, 'kek');
    await fs.writeFile(file, key.toString('hex'));
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o010]) {
      await fs.chmod(file, mode);
      const octal = mode.toString(8).padStart(4, '0');
      await assert.rejects(
        () => loadKek('file:kek', dir),
        (err: unknown) => {
          assert.ok(err instanceof JobConfigError, String(err));
          assert.equal(
            err.message,
            `key-encryption key file:kek: permissions ${octal} for ${file} are too open; it must be readable by its owner only (chmod 600)`,
          );
          assert.ok(!err.message.includes(key.toString('hex')));
          return true;
        },
      );
    }
    // Its owner's bits alone are fine, read-only too; a reference to the environment has no mode.
    for (const mode of [0o600, 0o400, 0o700]) {
      await fs.chmod(file, mode);
      assert.deepEqual(await loadKek('file:kek', dir), key);
    }
    assert.deepEqual(await loadKek('env:MY_KEK', dir, { MY_KEK: key.toString('hex') }), key);
  },
);

test(
  'a KEK file under the working directory is named by its relative path',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'kek'), crypto.randomBytes(32).toString('hex'), { mode: 0o644 });
    await fs.chmod(path.join(dir, 'kek'), 0o644); // whatever the umask
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await assert.rejects(
        () => loadKek('file:kek', dir),
        /permissions 0644 for kek are too open; it must be readable by its owner only \(chmod 600\)/,
      );
    } finally {
      process.chdir(cwd);
    }
  },
);
