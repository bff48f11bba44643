// Regenerates fixtures/exports (run: npm run fixtures). The output is committed so the demo needs no step.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeSampleExport } from './sample-exports';
import { sampleRegistrationNumber, writeSampleDataExport } from './sample-data-exports';

async function main(): Promise<void> {
  const root = path.resolve(process.argv[2] ?? 'fixtures/exports');
  await fs.rm(root, { recursive: true, force: true });
  const a = await writeSampleExport({
    dir: path.join(root, 'sakura'),
    tenantName: 'Sakura Shoji K.K.',
    invoicePrefix: 'SKR',
    count: 32,
    encoding: 'cp932',
    exportName: 'seikyu-20261124.csv',
    withBadRows: true,
  });
  const b = await writeSampleExport({
    dir: path.join(root, 'fuji'),
    tenantName: 'Fuji Denki K.K.',
    invoicePrefix: 'FJD',
    count: 32,
    encoding: 'utf8-bom',
    exportName: 'invoices-20261124.csv',
  });
  // Invoice data for fuji's second job, rendered then sealed: up to 40 lines (two pages), three bad.
  const c = await writeSampleDataExport({
    dir: path.join(root, 'fuji-data'),
    invoicePrefix: 'FJX',
    count: 40,
    encoding: 'cp932',
    registrationNumber: sampleRegistrationNumber(2),
    exportName: 'seikyu-data-20261124.csv',
    maxLines: 40,
    withBadInvoices: true,
  });
  console.log(
    `fixtures: ${a.exportFile} (${a.invoices} invoices, ${a.badRows} bad rows), ${b.exportFile} (${b.invoices} invoices), ` +
      `${c.exportFile} (${c.invoices} invoices of data, ${c.badInvoices.size} bad, ${c.rows} rows)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
