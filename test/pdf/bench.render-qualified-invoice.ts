// Not a test: prints the CPU time renderQualifiedInvoice takes per invoice, for the invoices of a
// sample data export read as the producer reads it (distinct numbers, customers, quantities; 1 to 6
// lines), in several rounds, with the load average; and the first render of a process (which reads and
// parses the font files) and a 40-line invoice. CPU time, so that a busy machine distorts it less
// than wall time. node --test runs every .js under test/, so it only runs when asked:
//   SEALER_BENCH=1 node dist/test/pdf/bench.render-qualified-invoice.js [invoices] [rounds]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadJobFile } from '../../src/jobs';
import { renderQualifiedInvoice, type InvoiceDocument, type InvoiceTemplate } from '../../src/pdf';
import { decodeInvoiceRecord } from '../../src/seal';
import { dataExportEntries } from '../../src/queue/data-export-source';
import {
  sampleDataExportSpec,
  sampleInvoiceProfile,
  sampleRegistrationNumber,
  writeSampleDataExport,
} from '../../src/demo/sample-data-exports';
import { longInvoice, TEMPLATE } from './qualified-invoice-fixture';

/** CPU ms of one call. */
async function cpuOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.cpuUsage();
  await fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)]!;
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** The invoices of a sample data export, as the producer would spool them. */
async function sampleInvoices(
  count: number,
): Promise<{ document: InvoiceDocument; template: InvoiceTemplate }[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-render-bench-'));
  try {
    const { exportFile } = await writeSampleDataExport({
      dir: path.join(dir, 'inbox'),
      invoicePrefix: 'BEN',
      count,
      encoding: 'utf8',
      registrationNumber: sampleRegistrationNumber(7),
    });
    const jobFile = path.join(dir, 'bench.json');
    await fs.writeFile(
      jobFile,
      JSON.stringify({
        name: 'render-bench',
        cron: '0 2 * * *',
        tenant: 'bench',
        export: { folder: 'inbox', data: sampleDataExportSpec() },
        invoice: sampleInvoiceProfile('株式会社ベンチ商事', [
          '東京都千代田区丸の内1-1-1',
          'TEL 03-0000-0000',
        ]),
        signing: { clientId: 'bench', clientSecret: 'env:NONE', credentialId: 'bench' },
        outbox: 'outbox',
      }),
    );
    const job = await loadJobFile(jobFile);
    const out: { document: InvoiceDocument; template: InvoiceTemplate }[] = [];
    for await (const item of dataExportEntries(exportFile, job)) {
      if (!item.ok) throw new Error(`sample invoice rejected: ${JSON.stringify(item.rejected)}`);
      const { document, template } = decodeInvoiceRecord(item.entry.record, exportFile);
      out.push({ document, template });
    }
    return out;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 300);
  const rounds = Number(process.argv[3] ?? 5);
  const invoices = await sampleInvoices(count);
  console.log(`\nrenderQualifiedInvoice, CPU ms per invoice; load average before: ${load()}`);
  const first = await cpuOnce(() => renderQualifiedInvoice(invoices[0]!.document, invoices[0]!.template));
  console.log(`  first render of a process (fonts read, parsed): ${first.toFixed(1)} ms`);
  const medians: number[] = [];
  let bytes = 0;
  for (let r = 1; r <= rounds; r++) {
    const times: number[] = [];
    for (const { document, template } of invoices) {
      times.push(
        await cpuOnce(async () => {
          bytes = (await renderQualifiedInvoice(document, template)).length;
        }),
      );
    }
    medians.push(median(times));
    console.log(
      `  round ${r}: ${invoices.length} distinct sample invoices (1-6 lines): median ${median(times).toFixed(1)} ms, ` +
        `p90 ${quantile(times, 0.9).toFixed(1)} ms, mean ${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1)} ms`,
    );
  }
  const long = longInvoice(40);
  const longTimes: number[] = [];
  for (let i = 0; i < 11; i++) longTimes.push(await cpuOnce(() => renderQualifiedInvoice(long, TEMPLATE)));
  const longBytes = (await renderQualifiedInvoice(long, TEMPLATE)).length;
  console.log(`  40 lines (2 pages), median of 11: ${median(longTimes).toFixed(1)} ms, ${longBytes} B`);
  console.log(
    `render bench: median ${median(medians).toFixed(1)} CPU ms per invoice over ${rounds} rounds of ${invoices.length} ` +
      `(last invoice ${bytes} B); load average after: ${load()}`,
  );
}

if (process.env.SEALER_BENCH === '1') {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
