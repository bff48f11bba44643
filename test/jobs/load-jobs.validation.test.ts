import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadJobFile, loadJobs, resolveSecret, JobConfigError } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const valid = {
  name: 'acme-nightly',
  cron: '0 2 * * *',
  tenant: 'acme',
  export: {
    folder: 'inbox',
    columns: {
      invoiceNumber: '請求書番号',
      customerName: '取引先名',
      amount: '請求金額',
      pdfPath: 'PDFファイル',
    },
  },
  signing: {
    clientId: 'acme-app',
    clientSecret: 'env:ACME_SECRET',
    credentialId: 'acme-cred',
    pin: 'file:pin.txt',
  },
  outbox: 'outbox',
};

async function write(dir: string, name: string, body: unknown): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, JSON.stringify(body));
  return file;
}

test(
  'a valid job gets defaults and paths resolved against its file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const job = await loadJobFile(await write(dir, 'acme.json', valid));
    assert.equal(job.timeZone, 'Asia/Tokyo');
    assert.equal(job.export.encoding, 'auto');
    assert.equal(job.export.glob, '*.csv');
    assert.equal(job.signing.batchSize, 20);
    assert.equal(job.exportFolder, path.join(dir, 'inbox'));
    assert.equal(job.outboxRoot, path.join(dir, 'outbox'));
  },
);

test('an invalid job names the file and the wrong field', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const cases: [unknown, RegExp][] = [
    [{ ...valid, cron: 'every night' }, /cron: invalid cron expression/],
    [{ ...valid, timeZone: 'Mars/Olympus' }, /timeZone: unknown IANA time zone/],
    [
      { ...valid, signing: { ...valid.signing, clientSecret: 'hunter2' } },
      /signing\.clientSecret: must be a secret reference/,
    ],
    [{ ...valid, signing: { ...valid.signing, batchSize: 0 } }, /signing\.batchSize/],
    [
      { ...valid, export: { ...valid.export, columns: { invoiceNumber: 'x' } } },
      /export\.columns\.customerName/,
    ],
    [{ ...valid, extra: true }, /extra/],
  ];
  for (const [body, pattern] of cases) {
    const file = await write(dir, 'bad.json', body);
    await assert.rejects(loadJobFile(file), (err: Error) => {
      assert.ok(err instanceof JobConfigError);
      assert.match(err.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      assert.match(err.message, pattern);
      return true;
    });
  }
});

test('an inline secret value never appears in the error', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const file = await write(dir, 'leak.json', { ...valid, signing: { ...valid.signing, pin: '123456' } });
  await assert.rejects(loadJobFile(file), (err: Error) => !err.message.includes('123456'));
});

test('two jobs with one name are refused, naming both files', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  await write(dir, 'a.json', valid);
  await write(dir, 'b.json', valid);
  await assert.rejects(loadJobs(dir), /acme-nightly is defined twice: .*a\.json and .*b\.json/);
});

test(
  'secret references resolve from env and from files relative to the job folder',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'pin.txt'), '4321\n');
    assert.equal(await resolveSecret('file:pin.txt', dir), '4321');
    assert.equal(await resolveSecret('env:ACME_SECRET', dir, { ACME_SECRET: 's3cret' }), 's3cret');
    await assert.rejects(resolveSecret('env:MISSING_ONE', dir, {}), /MISSING_ONE is not set/);
    await assert.rejects(resolveSecret('file:nope.txt', dir), /cannot read .*nope\.txt/);
  },
);

test(
  'a job file that is not JSON is named with the line, and its text is not echoed',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'broken.json');
    await fs.writeFile(file, '{\n  "name": "x",\n  "pin": S3cretPIN-\n}');
    await assert.rejects(loadJobFile(file), (err: Error) => {
      assert.match(err.message, /broken\.json is not valid JSON/);
      assert.ok(!err.message.includes('S3cretPIN'));
      return true;
    });
  },
);

/** The loader's refusal of `body`, which must name the file and match every pattern. */
async function assertRefused(dir: string, body: unknown, ...patterns: RegExp[]): Promise<void> {
  const file = await write(dir, 'refused.json', body);
  await assert.rejects(loadJobFile(file), (err: Error) => {
    assert.ok(err instanceof JobConfigError, String(err));
    assert.ok(err.message.includes(file), err.message);
    for (const pattern of patterns) assert.match(err.message, pattern);
    return true;
  });
}

const { pin: _pin, ...signingWithoutFactors } = valid.signing;
const withCustody = (custody: unknown, extra: Record<string, unknown> = {}) => ({
  ...valid,
  signing: { ...signingWithoutFactors, custody, ...extra },
});

test(
  'an OTP sent to a person (sendOTP, oob) is refused unless the tenant approves, and says why',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    for (const otpDelivery of ['sendOTP', 'oob'] as const) {
      for (const [custody, extra] of [
        [{ mode: 'secret-refs' }, { pin: 'file:pin.txt' }],
        [{ mode: 'provider-held', vault: 'vault' }, {}],
        [{ mode: 'implicit' }, {}],
      ] as const) {
        await assertRefused(
          dir,
          withCustody(custody, { ...extra, otpDelivery }),
          new RegExp(
            `signing\\.otpDelivery: an OTP sent to a person \\(${otpDelivery}\\) cannot be answered at night; use custody approval`,
          ),
        );
      }
      // Under approval a person answers it, on the provider's page or at the prompt.
      for (const via of ['oauth2code', 'prompt'] as const) {
        const job = await loadJobFile(
          await write(dir, 'approval.json', withCustody({ mode: 'approval', via }, { otpDelivery })),
        );
        assert.equal(job.signing.otpDelivery, otpDelivery);
        assert.equal(job.signing.custody.mode, 'approval');
      }
    }
    // TOTP is the default and needs no approval.
    const job = await loadJobFile(await write(dir, 'totp.json', valid));
    assert.equal(job.signing.otpDelivery, 'totp');
  },
);

test(
  'pin and totpSecret are refused when the factors are not kept in the job (provider-held, approval, implicit)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    for (const custody of [
      { mode: 'provider-held', vault: 'vault' },
      { mode: 'approval', via: 'prompt' },
      { mode: 'implicit' },
    ]) {
      for (const field of ['pin', 'totpSecret'] as const) {
        await assertRefused(
          dir,
          withCustody(custody, { [field]: 'file:factor.txt' }),
          new RegExp(
            `signing\\.${field}: not allowed with custody ${custody.mode}: the factors are not kept here`,
          ),
        );
      }
      // Without them the same definition loads.
      const job = await loadJobFile(await write(dir, 'ok.json', withCustody(custody)));
      assert.equal(job.signing.custody.mode, custody.mode);
    }
    const vaulted = await loadJobFile(
      await write(dir, 'vaulted.json', withCustody({ mode: 'provider-held', vault: 'vault' })),
    );
    assert.equal(vaulted.factorVaultDir, path.join(dir, 'vault'));
    // secret-refs (the default) takes them.
    const refs = await loadJobFile(
      await write(dir, 'refs.json', { ...valid, signing: { ...valid.signing, totpSecret: 'env:ACME_TOTP' } }),
    );
    assert.equal(refs.signing.custody.mode, 'secret-refs');
  },
);

test(
  'one credential used by two tenants is refused, naming both files',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const a = await write(dir, 'a.json', valid);
    const b = await write(dir, 'b.json', { ...valid, name: 'globex-nightly', tenant: 'globex' });
    await assert.rejects(loadJobs(dir), (err: Error) => {
      assert.ok(err instanceof JobConfigError);
      assert.ok(
        err.message.includes(
          `credential acme-cred is used by tenant acme (${a}) and tenant globex (${b}); a credential belongs to one tenant`,
        ),
        err.message,
      );
      return true;
    });
    // Two jobs of one tenant may share a credential, with the same custody ...
    await write(dir, 'b.json', { ...valid, name: 'acme-weekly' });
    assert.deepEqual((await loadJobs(dir)).map((j) => j.name).sort(), ['acme-nightly', 'acme-weekly']);
    // ... but not with two custodies: they would share its SADs.
    await write(dir, 'b.json', { ...withCustody({ mode: 'implicit' }), name: 'acme-weekly' });
    await assert.rejects(
      loadJobs(dir),
      /jobs acme-nightly and acme-weekly use credential acme-cred with different signing\.custody/,
    );
  },
);

test(
  'clientSecret is required for client_credentials service auth, and only there',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { clientSecret: _secret, ...noSecret } = valid.signing;
    await assertRefused(
      dir,
      { ...valid, signing: noSecret },
      /signing\.clientSecret: required for serviceAuth client_credentials/,
    );
    await assertRefused(
      dir,
      { ...valid, signing: { ...noSecret, serviceAuth: { method: 'client_credentials', scope: 'service' } } },
      /signing\.clientSecret: required for serviceAuth client_credentials/,
    );
    const bearer = await loadJobFile(
      await write(dir, 'bearer.json', {
        ...valid,
        signing: { ...noSecret, serviceAuth: { method: 'bearer', token: 'env:ACME_API_TOKEN' } },
      }),
    );
    assert.equal(bearer.signing.serviceAuth.method, 'bearer');
    const basic = await loadJobFile(
      await write(dir, 'basic.json', {
        ...valid,
        signing: { ...noSecret, serviceAuth: { method: 'basic', username: 'acme', password: 'env:ACME_PW' } },
      }),
    );
    assert.equal(basic.signing.clientSecret, undefined);
  },
);

test(
  'a value given where a secret reference belongs is refused without being shown',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const raw = 'a'.repeat(64);
    await assert.rejects(resolveSecret(raw, '/tmp'), (err: Error) => {
      assert.ok(err instanceof JobConfigError);
      assert.match(err.message, /must be env:NAME or file:PATH/);
      assert.ok(!err.message.includes(raw));
      return true;
    });
  },
);
