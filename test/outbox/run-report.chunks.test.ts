// A run report handed over a chunk at a time (as the queue does for a large run) is written as the
// chunks come, and replaces the report before it only when every chunk was made, in report order: a
// chunk that cannot be made, or one out of order, leaves the old report whole and no temp file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { writeRunReport, type RunReportInvoice } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const RUN = 'sakura-nightly-20261201-020000-000';

/** The messages of an error and of its causes. */
function messages(err: unknown): string {
  const out: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) out.push(e.message);
  return out.join(' <- ');
}

const invoice = (i: number) => `INV-${i}`;
const failed = (i: number): RunReportInvoice => ({
  invoiceNumber: invoice(i),
  status: 'failed',
  line: i,
  failure: { reason: `reason ${i}` },
});

test(
  'a report whose chunks cannot all be made, or come out of order, leaves the report before it whole and no temp file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const input = {
      runId: RUN,
      job: 'sakura-nightly',
      tenant: 'sakura',
      runDate: '2026-12-01',
      endedAt: '2026-11-30T19:00:00.000Z',
      counts: {},
      rejects: [],
    };
    const first = await writeRunReport(root, { ...input, invoices: [failed(1), failed(2)] });
    const before = await fs.readFile(first.manifest, 'utf8');

    // The second chunk cannot be made (its Redis read failed, say): the write stops, the old report stays.
    async function* chunks(): AsyncGenerator<RunReportInvoice[]> {
      yield Array.from({ length: 2000 }, (_, k) => failed(k + 1));
      throw new Error('Redis went away');
    }
    await assert.rejects(writeRunReport(root, { ...input, invoices: chunks() }), (err) =>
      /Redis went away/.test(messages(err)),
    );
    assert.equal(await fs.readFile(first.manifest, 'utf8'), before);
    assert.deepEqual((await fs.readdir(first.dir)).sort(), ['manifest.csv', 'rejects.csv', 'summary.json']);

    // Chunks handed over out of report order are refused, not written as if in order.
    async function* unordered(): AsyncGenerator<RunReportInvoice[]> {
      yield [failed(1), failed(10)];
      yield [failed(2)];
    }
    await assert.rejects(writeRunReport(root, { ...input, invoices: unordered() }), (err) =>
      /out of order/.test(messages(err)),
    );
    assert.equal(await fs.readFile(first.manifest, 'utf8'), before);
    assert.deepEqual((await fs.readdir(first.dir)).sort(), ['manifest.csv', 'rejects.csv', 'summary.json']);
  },
);
