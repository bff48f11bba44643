// Key rotation of the factor vault: everything moves to the new key or nothing does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FactorVault, FactorVaultError, kekIdOf, rotateKey, type FactorsToStore } from '../../src/custody';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const totp = { digits: 6, periodSec: 30, algorithm: 'SHA1' } as const;
const factors = (pin: string): FactorsToStore => ({ pin, totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DP', totp });

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of await fs.readdir(dir)) {
    for (const f of await fs.readdir(path.join(dir, t))) {
      out.set(`${t}/${f}`, await fs.readFile(path.join(dir, t, f), 'utf8'));
    }
  }
  return out;
}

test(
  'rotate-key re-encrypts every file: the old key no longer works, the new one does',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const oldKek = crypto.randomBytes(32);
    const newKek = crypto.randomBytes(32);
    const old = new FactorVault(dir, oldKek);
    const before = [
      await old.store('bco', 'b-1', factors('111111')),
      await old.store('bco', 'b-2', factors('222222')),
      await old.store('cco', 'c-1', factors('333333')),
    ];

    assert.deepEqual(await rotateKey(dir, oldKek, newKek), { files: 3, skipped: 0 });

    const fresh = new FactorVault(dir, newKek);
    for (const [tenant, cred, pin] of [
      ['bco', 'b-1', '111111'],
      ['bco', 'b-2', '222222'],
      ['cco', 'c-1', '333333'],
    ] as const) {
      const back = await fresh.read(tenant, cred);
      assert.equal(back.pin, pin);
      assert.equal(back.kekId, kekIdOf(newKek));
      assert.equal(back.storedAt, before.find((b) => b.file === fresh.fileFor(tenant, cred))!.storedAt);
      await assert.rejects(
        () => old.read(tenant, cred),
        new RegExp(`encrypted under key ${kekIdOf(newKek)}, the configured key is ${kekIdOf(oldKek)}`),
      );
    }
    for (const { file } of before) assert.equal((await fs.stat(file)).mode & 0o777, 0o600);

    // Run again (e.g. after an interruption): everything is already under the new key.
    assert.deepEqual(await rotateKey(dir, oldKek, newKek), { files: 0, skipped: 3 });
  },
);

test(
  'a file under neither key stops the rotation, naming it, before anything is changed',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const oldKek = crypto.randomBytes(32);
    const newKek = crypto.randomBytes(32);
    const stray = crypto.randomBytes(32);
    await new FactorVault(dir, oldKek).store('bco', 'b-1', factors('111111'));
    await new FactorVault(dir, oldKek).store('cco', 'c-1', factors('333333'));
    const { file } = await new FactorVault(dir, stray).store('dco', 'd-1', factors('444444'));
    const untouched = await snapshot(dir);

    await assert.rejects(
      () => rotateKey(dir, oldKek, newKek),
      (err: unknown) => {
        assert.ok(err instanceof FactorVaultError);
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, new RegExp(`encrypted under key ${kekIdOf(stray)}, neither the old key`));
        assert.match(err.message, /nothing was changed/);
        return true;
      },
    );
    assert.deepEqual(await snapshot(dir), untouched);
  },
);

test(
  'a tampered file stops the rotation before anything is changed',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const oldKek = crypto.randomBytes(32);
    const vault = new FactorVault(dir, oldKek);
    await vault.store('bco', 'b-1', factors('111111'));
    const { file } = await vault.store('cco', 'c-1', factors('333333'));
    const content = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, string>;
    await fs.writeFile(file, JSON.stringify({ ...content, tenant: 'bco' }));
    const untouched = await snapshot(dir);
    await assert.rejects(() => rotateKey(dir, oldKek, crypto.randomBytes(32)), /nothing was changed/);
    assert.deepEqual(await snapshot(dir), untouched);
  },
);

test(
  "rotation for one tenant leaves other tenants' files alone; the same key twice is refused",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const oldKek = crypto.randomBytes(32);
    const newKek = crypto.randomBytes(32);
    const vault = new FactorVault(dir, oldKek);
    await vault.store('bco', 'b-1', factors('111111'));
    await vault.store('cco', 'c-1', factors('333333'));
    assert.deepEqual(await rotateKey(dir, oldKek, newKek, { tenant: 'bco' }), { files: 1, skipped: 0 });
    assert.equal((await new FactorVault(dir, newKek).read('bco', 'b-1')).pin, '111111');
    assert.equal((await vault.read('cco', 'c-1')).pin, '333333');
    await assert.rejects(() => rotateKey(dir, oldKek, Buffer.from(oldKek)), /the new key is the old key/);
  },
);
