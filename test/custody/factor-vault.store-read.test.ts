// The provider-held factor vault: what it writes to disk, what it gives back, and every way it refuses a
// file that is not the one it wrote (wrong key, another tenant's place, altered bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { FactorVault, FactorVaultError, kekIdOf, keyFactorsOf, type FactorsToStore } from '../../src/custody';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const PIN = '739152';
const TOTP_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const FACTORS: FactorsToStore = {
  pin: PIN,
  totpSecret: TOTP_SECRET,
  totp: { digits: 8, periodSec: 60, algorithm: 'SHA256' },
};

const newKek = () => crypto.randomBytes(32);

/** Asserts that `fn` rejects with a FactorVaultError matching `pattern` and carrying no secret. */
async function refuses(fn: () => Promise<unknown>, pattern: RegExp, secrets: (string | Buffer)[] = []) {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof FactorVaultError, String(err));
    assert.match(err.message, pattern);
    for (const s of [PIN, TOTP_SECRET, ...secrets]) {
      const text = Buffer.isBuffer(s) ? [s.toString('hex'), s.toString('base64')] : [s];
      for (const t of text)
        assert.ok(!err.message.includes(t), `error message carries a secret: ${err.message}`);
    }
    return true;
  });
}

test(
  'factors stored for a tenant come back the same, with the TOTP settings and the key id',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const kek = newKek();
    const vault = new FactorVault(path.join(dir, 'vault'), kek);
    const stored = await vault.store('bco', 'bco-eseal', FACTORS);
    assert.equal(stored.file, path.join(dir, 'vault', 'bco', 'bco-eseal.factors.json'));
    assert.equal(stored.kekId, kekIdOf(kek));
    assert.equal(stored.kekId, crypto.createHash('sha256').update(kek).digest('hex').slice(0, 16));

    const back = await new FactorVault(path.join(dir, 'vault'), kek).read('bco', 'bco-eseal');
    assert.equal(back.pin, PIN);
    assert.equal(back.totpSecret, TOTP_SECRET);
    assert.deepEqual(back.totp, FACTORS.totp);
    assert.equal(back.tenant, 'bco');
    assert.equal(back.credentialId, 'bco-eseal');
    assert.equal(back.kekId, stored.kekId);
    assert.equal(back.storedAt, stored.storedAt);
    assert.deepEqual(keyFactorsOf(back), {
      pin: PIN,
      totpSecret: TOTP_SECRET,
      totpDigits: 8,
      totpPeriod: 60,
      totpAlgorithm: 'SHA256',
    });
  },
);

test(
  'the file on disk is private, has the documented fields and holds neither the PIN nor the TOTP secret',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const vault = new FactorVault(path.join(dir, 'vault'), newKek());
    const { file } = await vault.store('bco', 'bco-eseal', FACTORS);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
    assert.equal((await fs.stat(vault.dir)).mode & 0o777, 0o700);
    assert.deepEqual(await fs.readdir(path.dirname(file)), ['bco-eseal.factors.json'], 'no temp file left');

    const bytes = await fs.readFile(file);
    for (const secret of [PIN, TOTP_SECRET, TOTP_SECRET.toLowerCase()]) {
      assert.equal(bytes.indexOf(secret), -1, 'a factor is in the file');
      assert.equal(
        bytes.indexOf(Buffer.from(secret).toString('base64')),
        -1,
        'a factor is in the file (base64)',
      );
    }
    const content = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(content).sort(), [
      'ciphertext',
      'credentialId',
      'iv',
      'kekId',
      'storedAt',
      'tag',
      'tenant',
      'version',
    ]);
    assert.equal(content.version, 1);
    assert.equal(Buffer.from(content.iv as string, 'base64').length, 12);
    assert.equal(Buffer.from(content.tag as string, 'base64').length, 16);
  },
);

test(
  'a TOTP secret is normalised to Base32 capitals; a PIN alone or a secret alone is enough',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const kek = newKek();
    const vault = new FactorVault(dir, kek);
    await vault.store('bco', 'otp-only', { totpSecret: 'gezd gnbv-gy3t qojq', totp: FACTORS.totp });
    const otpOnly = await vault.read('bco', 'otp-only');
    assert.equal(otpOnly.totpSecret, 'GEZDGNBVGY3TQOJQ');
    assert.equal(otpOnly.pin, undefined);
    await vault.store('bco', 'pin-only', { pin: PIN, totp: FACTORS.totp });
    assert.equal((await vault.read('bco', 'pin-only')).totpSecret, undefined);
  },
);

test('bad factors are refused without repeating them', { timeout: TEST_TIMEOUT_MS }, async () => {
  const vault = new FactorVault(await tempDir(), newKek());
  const totp = FACTORS.totp;
  await refuses(
    () => vault.store('bco', 'c', { pin: PIN, totpSecret: `${TOTP_SECRET}1`, totp }),
    /not Base32/,
    [`${TOTP_SECRET}1`],
  );
  await refuses(() => vault.store('bco', 'c', { totpSecret: 'GEZDGNBV', totp }), /too short/, ['GEZDGNBV']);
  await refuses(
    () => vault.store('bco', 'c', { pin: '  ', totp }),
    /PIN of tenant bco, credential c is empty/,
  );
  await refuses(() => vault.store('bco', 'c', { totp }), /nothing to store/);
  await refuses(() => vault.store('../etc', 'c', FACTORS), /not a valid tenant name/);
  await refuses(
    () => vault.read('bco', 'never-stored'),
    /no factors stored for tenant bco, credential never-stored/,
  );
});

test(
  'decrypted factors do not show their values when logged or inspected',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const vault = new FactorVault(await tempDir(), newKek());
    await vault.store('bco', 'bco-eseal', FACTORS);
    const back = await vault.read('bco', 'bco-eseal');
    for (const shown of [JSON.stringify(back), inspect(back), `${JSON.stringify({ factors: back })}`]) {
      assert.ok(!shown.includes(PIN) && !shown.includes(TOTP_SECRET), shown);
      assert.match(shown, /redacted/);
    }
  },
);

test('a wrong key is named as such, with both key ids', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const right = newKek();
  const wrong = newKek();
  await new FactorVault(dir, right).store('bco', 'bco-eseal', FACTORS);
  await refuses(
    () => new FactorVault(dir, wrong).read('bco', 'bco-eseal'),
    new RegExp(`tenant bco.*encrypted under key ${kekIdOf(right)}, the configured key is ${kekIdOf(wrong)}`),
    [right, wrong],
  );
});

test(
  "a file copied from tenant B's place to tenant C's refuses to decrypt, even with its header rewritten",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const kek = newKek();
    const vault = new FactorVault(dir, kek);
    const { file } = await vault.store('bco', 'shared-id', FACTORS);
    const target = vault.fileFor('cco', 'shared-id');
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.copyFile(file, target);
    await refuses(
      () => vault.read('cco', 'shared-id'),
      /factors of tenant bco, credential shared-id, not of tenant cco/,
    );

    // An attacker who also edits the names in the file meets the associated data.
    const content = JSON.parse(await fs.readFile(target, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(target, JSON.stringify({ ...content, tenant: 'cco' }));
    await refuses(
      () => vault.read('cco', 'shared-id'),
      /\(tenant cco, credential shared-id\) does not decrypt/,
    );

    // The same holds for another credential of the same tenant.
    const other = vault.fileFor('bco', 'other-id');
    await fs.writeFile(other, JSON.stringify({ ...content, credentialId: 'other-id' }));
    await refuses(
      () => vault.read('bco', 'other-id'),
      /\(tenant bco, credential other-id\) does not decrypt/,
    );
    assert.equal((await vault.read('bco', 'shared-id')).pin, PIN, 'the original still reads');
  },
);

test('tampered ciphertext, tag or IV is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const vault = new FactorVault(dir, newKek());
  const { file } = await vault.store('bco', 'bco-eseal', FACTORS);
  const original = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, string>;
  const flip = (b64: string) => {
    const b = Buffer.from(b64, 'base64');
    b[0]! ^= 0x01;
    return b.toString('base64');
  };
  for (const field of ['ciphertext', 'tag', 'iv'] as const) {
    await fs.writeFile(file, JSON.stringify({ ...original, [field]: flip(original[field]!) }));
    await refuses(
      () => vault.read('bco', 'bco-eseal'),
      /\(tenant bco, credential bco-eseal\) does not decrypt: altered/,
    );
  }
  await fs.writeFile(file, '{"version":1,');
  await refuses(() => vault.read('bco', 'bco-eseal'), /is not valid JSON/);
  await fs.writeFile(file, JSON.stringify({ ...original, version: 2 }));
  await refuses(() => vault.read('bco', 'bco-eseal'), /malformed \(version\)/);
});

test(
  'list shows tenant, credential, key and date of each file, and never a value',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const kek = newKek();
    const vault = new FactorVault(dir, kek);
    await vault.store('bco', 'b-1', FACTORS);
    await vault.store('bco', 'b/2', FACTORS);
    await vault.store('cco', 'c-1', { pin: '000111', totp: FACTORS.totp });
    const list = await vault.list();
    assert.deepEqual(
      list.map((f) => [f.tenant, f.credentialId, f.kekId, f.problem]),
      [
        ['bco', 'b-1', kekIdOf(kek), undefined],
        ['bco', 'b/2', kekIdOf(kek), undefined],
        ['cco', 'c-1', kekIdOf(kek), undefined],
      ],
    );
    const shown = JSON.stringify(list);
    assert.ok(!shown.includes(PIN) && !shown.includes(TOTP_SECRET) && !shown.includes('000111'));
    assert.deepEqual(await new FactorVault(path.join(dir, 'none'), kek).list(), []);
  },
);
