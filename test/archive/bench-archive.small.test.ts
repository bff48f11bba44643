// The archive benchmark at a small size: what it times are the searches it says (each shape's total
// matches a reference search of the same synthetic rows), and it leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ArchiveError, benchArchive } from '../../src/archive';
import { syntheticInvoices, customerNames } from '../../src/archive/synthetic-invoices';
import { TEST_POSTGRES_URL } from '../helpers/test-postgres';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { referenceSearch } from './archive-fixture';

const ROWS = 3000;
const opts = { timeout: TEST_TIMEOUT_MS };

test('synthetic invoices: a few thousand distinct Japanese customers, ten years, spread amounts', () => {
  const names = customerNames();
  assert.ok(names.length > 3000 && names.length < 6000, `${names.length}`);
  assert.equal(new Set(names).size, names.length);
  const rows = [...syntheticInvoices({ tenant: 't', count: 20_000 })].flat();
  assert.equal(rows.length, 20_000);
  const years = new Set(rows.map((r) => r.issueDate!.slice(0, 4)));
  assert.deepEqual([...years].sort(), [
    '2016',
    '2017',
    '2018',
    '2019',
    '2020',
    '2021',
    '2022',
    '2023',
    '2024',
    '2025',
  ]);
  assert.ok(new Set(rows.map((r) => r.customer)).size > 2000);
  assert.ok(
    rows.some((r) => r.amount < 0) &&
      rows.some((r) => r.amount > 1_000_000) &&
      rows.some((r) => r.amount < 10_000),
  );
});

for (const backend of ['sqlite', 'postgres'] as const) {
  test(
    `${backend}: every shape's total agrees with a reference search, and nothing is left behind`,
    opts,
    async () => {
      const lines: string[] = [];
      const result = await benchArchive({
        rows: ROWS,
        repeats: 1,
        out: (l) => lines.push(l),
        ...(backend === 'postgres' ? { spec: TEST_POSTGRES_URL } : {}),
      });
      assert.equal(result.backend, backend);
      assert.equal(result.rows, ROWS);
      assert.ok(result.storageBytes > 0 && result.fillMs > 0);
      const all = [...syntheticInvoices({ tenant: 'bench', count: ROWS })].flat();
      assert.ok(result.shapes.length >= 10);
      for (const shape of result.shapes) {
        const expected = referenceSearch(all, shape.query);
        assert.equal(shape.total, Math.min(expected.length, 10_000), shape.name);
        assert.equal(
          shape.rows,
          Math.min(
            expected.length - Math.min(expected.length, shape.query.offset ?? 0),
            shape.query.limit ?? 100,
          ),
          shape.name,
        );
        assert.ok(
          lines.some((l) => l.includes(shape.name)),
          shape.name,
        );
      }
      assert.ok(result.shapes.some((s) => s.total > 0) && result.shapes.some((s) => s.total === 0));
      assert.ok(lines.some((l) => l.startsWith('fill:')));
      // What this run made, by name: other files (or a second suite beside this one) may be running
      // benchmarks of their own at the same moment, so "no bench folder or schema at all" would race.
      if (backend === 'sqlite') {
        assert.ok(path.basename(path.dirname(result.location)).startsWith('sealer-bench-archive-'));
        assert.equal(path.dirname(path.dirname(result.location)), os.tmpdir());
        assert.ok(!fs.existsSync(path.dirname(result.location)), result.location);
      } else {
        const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await db.connect();
        try {
          assert.match(result.location, /^sealer_archive_bench_[0-9a-f]+$/);
          const left = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [result.location]);
          assert.equal(left.rowCount, 0);
        } finally {
          await db.end();
        }
      }
    },
  );
}

test('the benchmark refuses to fill an existing file', opts, async () => {
  const file = path.join(await tempDir('sealer-archive-bench-'), 'index.sqlite');
  fs.writeFileSync(file, '');
  await assert.rejects(benchArchive({ rows: 10, spec: file, out: () => undefined }), ArchiveError);
});
