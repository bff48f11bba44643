// Not a test: CPU per prepare on the fast update-only path and on the pdf-lib path, for the bench's
// 2 KB sample invoice and a 50 KB 14-page one (classic xref and object streams). CPU time of the whole
// process (GC threads included), mean over n calls, median of 5 rounds. node --test runs every .js
// under test/, so it only runs when asked:
//   SEALER_BENCH=1 node dist/test/pdf/bench.fast-prepare.js [n-fast] [n-pdf-lib]
import { preparePdf, prepareSealUpdate, renderSampleInvoice } from '../../src/pdf';
import { preparePdfWithPdfLib } from '../../src/pdf/prepare';
import { prepareSealUpdateFast } from '../../src/pdf/seal-update';
import { renderMultiPageInvoice } from '../helpers/multi-page-invoice';

const options = { signingTime: new Date('2025-02-01T01:02:03Z'), reason: 'Invoice e-seal' };

/** Median over `rounds` of the mean CPU µs per call across `n` calls. */
async function measure(n: number, fn: () => unknown, rounds = 5): Promise<number> {
  for (let i = 0; i < Math.min(n, 50); i++) await fn(); // warm-up
  const means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const t = process.cpuUsage(t0);
    means.push((t.user + t.system) / n);
  }
  return means.sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
}

async function main(): Promise<void> {
  const nFast = Number(process.argv[2] ?? 2000);
  const nSlow = Number(process.argv[3] ?? 200);
  const inputs: Record<string, Buffer> = {
    'sample invoice, classic xref': await renderSampleInvoice({
      tenantName: 'Sample Shoji KK',
      invoiceNumber: 'INV-2025-0100',
      customerName: 'Yamada Trading',
      amount: 330000,
      issueDate: '2025-01-31',
    }),
    '14-page invoice, classic xref': await renderMultiPageInvoice(),
    '14-page invoice, object streams': await renderMultiPageInvoice({ useObjectStreams: true }),
  };
  const rows: string[][] = [];
  for (const [name, input] of Object.entries(inputs)) {
    const check = await prepareSealUpdate(input, options);
    if (check.path !== 'fast') throw new Error(`${name} did not take the fast path: ${check.fallbackReason}`);
    const fast = await measure(nFast, () => prepareSealUpdateFast(input, options));
    const fastFull = await measure(nFast, () => preparePdf(input, options));
    const slow = await measure(nSlow, () => preparePdfWithPdfLib(input, options));
    rows.push([
      `${name} (${(input.length / 1024).toFixed(1)} KB)`,
      fast.toFixed(0),
      fastFull.toFixed(0),
      slow.toFixed(0),
      (slow / fast).toFixed(1),
    ]);
  }
  console.log(`CPU µs per prepare, median of 5 rounds (fast: ${nFast} calls/round, pdf-lib: ${nSlow})`);
  console.log(
    ['input', 'fast update-only', 'preparePdf (fast + concat)', 'pdf-lib path', 'ratio'].join(' | '),
  );
  for (const row of rows) console.log(row.join(' | '));
}

if (process.env.SEALER_BENCH === '1') {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
