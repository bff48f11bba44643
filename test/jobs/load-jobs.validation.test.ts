import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadJobFile, loadJobs, resolveSecret, JobConfigError } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';

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

test('a valid job gets defaults and paths resolved against its file', async () => {
  const dir = await tempDir();
  const job = await loadJobFile(await write(dir, 'acme.json', valid));
  assert.equal(job.timeZone, 'Asia/Tokyo');
  assert.equal(job.export.encoding, 'auto');
  assert.equal(job.export.glob, '*.csv');
  assert.equal(job.signing.batchSize, 20);
  assert.equal(job.exportFolder, path.join(dir, 'inbox'));
  assert.equal(job.outboxRoot, path.join(dir, 'outbox'));
});

test('an invalid job names the file and the wrong field', async () => {
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

test('an inline secret value never appears in the error', async () => {
  const dir = await tempDir();
  const file = await write(dir, 'leak.json', { ...valid, signing: { ...valid.signing, pin: '123456' } });
  await assert.rejects(loadJobFile(file), (err: Error) => !err.message.includes('123456'));
});

test('two jobs with one name are refused, naming both files', async () => {
  const dir = await tempDir();
  await write(dir, 'a.json', valid);
  await write(dir, 'b.json', valid);
  await assert.rejects(loadJobs(dir), /acme-nightly is defined twice: .*a\.json and .*b\.json/);
});

test('secret references resolve from env and from files relative to the job folder', async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, 'pin.txt'), '4321\n');
  assert.equal(await resolveSecret('file:pin.txt', dir), '4321');
  assert.equal(await resolveSecret('env:ACME_SECRET', dir, { ACME_SECRET: 's3cret' }), 's3cret');
  await assert.rejects(resolveSecret('env:MISSING_ONE', dir, {}), /MISSING_ONE is not set/);
  await assert.rejects(resolveSecret('file:nope.txt', dir), /cannot read .*nope\.txt/);
});

test('a job file that is not JSON is named with the line, and its text is not echoed', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'broken.json');
  await fs.writeFile(file, '{\n  "name": "x",\n  "pin": S3cretPIN-\n}');
  await assert.rejects(loadJobFile(file), (err: Error) => {
    assert.match(err.message, /broken\.json is not valid JSON/);
    assert.ok(!err.message.includes('S3cretPIN'));
    return true;
  });
});
