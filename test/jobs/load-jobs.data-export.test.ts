// A job may declare a data export (header and detail rows rendered as qualified invoices) instead of a
// PDF export; its invoice profile is then required, and what is missing or contradictory is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadJobFile } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const opts = { timeout: TEST_TIMEOUT_MS };

const data = {
  layout: { kind: 'record-type', column: '種別' },
  header: {
    invoiceNumber: '請求書番号',
    issueDate: '発行日',
    recipientName: '取引先名',
    transactionDate: '取引日',
  },
  detail: { description: '品名', quantity: '数量', unitPrice: '単価', taxCategory: '税区分' },
};

const job = {
  name: 'fuji-data',
  cron: '0 2 * * *',
  tenant: 'fuji',
  export: { folder: 'inbox', data },
  invoice: {
    issuer: { name: '富士商事株式会社', registrationNumber: 'T7000012050002' },
    template: { logo: 'logo.png', accentColour: '#204080', footer: 'お問い合わせ: 03-0000-0000' },
  },
  signing: {
    clientId: 'fuji-app',
    clientSecret: 'env:FUJI_SECRET',
    credentialId: 'fuji-cred',
    pin: 'file:pin.txt',
  },
  outbox: 'outbox',
};

async function load(body: unknown) {
  const dir = await tempDir();
  const file = path.join(dir, 'job.json');
  await fs.writeFile(file, JSON.stringify(body));
  return { dir, load: () => loadJobFile(file) };
}

test('a data export job gets its layout and invoice defaults, and its logo resolved', opts, async () => {
  const { dir, load: read } = await load(job);
  const loaded = await read();
  assert.equal(loaded.export.columns, undefined);
  assert.deepEqual(loaded.export.data?.layout, {
    kind: 'record-type',
    column: '種別',
    header: 'H',
    detail: 'D',
  });
  assert.equal(loaded.invoice?.prices, 'excluding');
  assert.equal(loaded.invoice?.taxRounding, 'floor');
  assert.equal(loaded.invoice?.issuer.kind, 'corporation');
  assert.equal(loaded.invoiceLogoPath, path.join(dir, 'logo.png'));
});

test('what a data export job lacks or contradicts is named', opts, async () => {
  const { export: exp, invoice, ...rest } = job;
  const cases: [unknown, RegExp][] = [
    [{ ...rest, export: { folder: 'inbox' } }, /export\.columns: required: the columns of a PDF export/],
    [
      {
        ...job,
        export: { ...exp, columns: { invoiceNumber: 'a', customerName: 'b', amount: 'c', pdfPath: 'd' } },
      },
      /export\.data: an export is either PDF rows/,
    ],
    [{ ...rest, export: exp }, /invoice: required with export\.data/],
    [
      {
        ...job,
        export: { ...exp, data: { ...data, layout: { kind: 'two-files', details: '{name}-lines.csv' } } },
      },
      /export\.data\.detail\.invoiceNumber: required with layout two-files/,
    ],
    [
      { ...job, export: { ...exp, data: { ...data, layout: { kind: 'two-files', details: 'lines.csv' } } } },
      /export\.data\.layout\.details: a file name containing \{name\}/,
    ],
    [
      {
        ...job,
        export: { ...exp, data: { ...data, layout: { kind: 'two-files', details: 'lines/{name}.csv' } } },
      },
      /export\.data\.layout\.details: a file name beside the header file, not a path/,
    ],
    [
      { ...job, export: { ...exp, data: { ...data, layout: { kind: 'two-files', details: '{name}.CSV' } } } },
      /export\.data\.layout\.details: must differ from the header file/,
    ],
    [
      { ...job, invoice: { ...invoice, issuer: { name: '富士商事株式会社' } } },
      /invoice\.issuer\.registrationNumber: required/,
    ],
    [
      { ...job, invoice: { ...invoice, template: { accentColour: 'blue' } } },
      /invoice\.template\.accentColour: a colour as '#RRGGBB'/,
    ],
    [{ ...job, invoice: { ...invoice, taxRounding: 'bankers' } }, /invoice\.taxRounding/],
  ];
  for (const [body, pattern] of cases) {
    const { load: read } = await load(body);
    await assert.rejects(read(), pattern);
  }
});
