// Not a test: prints the CPU time renderQualifiedInvoice takes for a 10-line and a 60-line invoice
// (CPU time, so a busy machine distorts it less than wall time), and the first render of a process,
// which reads and parses both font files. node --test runs every .js under test/, so it only runs when asked:
//   SEALER_BENCH=1 node dist/test/pdf/bench.render-qualified-invoice.js
import { renderQualifiedInvoice, type InvoiceDocument } from '../../src/pdf';
import { longInvoice, TEMPLATE } from './qualified-invoice-fixture';

/** CPU ms of one call. */
async function cpuOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.cpuUsage();
  await fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1000;
}

/** Median CPU ms of `rounds` calls, after a few to warm up. */
async function median(fn: () => Promise<unknown>, rounds = 21): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) times.push(await cpuOnce(fn));
  return times.sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
}

async function main(): Promise<void> {
  const ten = longInvoice(10);
  const sixty = longInvoice(60);
  const first = await cpuOnce(() => renderQualifiedInvoice(ten, TEMPLATE));
  const rows: [string, InvoiceDocument][] = [
    ['10 lines', ten],
    ['60 lines', sixty],
  ];
  console.log('\nrenderQualifiedInvoice: CPU ms per invoice (median of 21)');
  console.log(
    `  ${'first render of a process (fonts read, parsed)'.padEnd(48)} ${first.toFixed(1).padStart(7)} ms`,
  );
  for (const [name, doc] of rows) {
    const ms = await median(() => renderQualifiedInvoice(doc, TEMPLATE));
    const bytes = (await renderQualifiedInvoice(doc, TEMPLATE)).length;
    console.log(`  ${name.padEnd(48)} ${ms.toFixed(1).padStart(7)} ms   ${bytes} B`);
  }
}

if (process.env.SEALER_BENCH === '1') {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
