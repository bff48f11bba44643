// Two hosts sharing one PostgreSQL archive: two archives (two pools, separate connections) open a new
// schema at the same moment (racing to migrate it) and then write at once, one by one and in
// batches, with shared customers and shared invoices. Nothing is lost, nothing doubled, no deadlock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresArchive, type ArchivedInvoice } from '../../src/archive';
import { TEST_POSTGRES_URL, testSchema } from '../helpers/test-postgres';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { invoice } from './archive-fixture';

const entry = (host: number, number: string, i: number): ArchivedInvoice =>
  invoice('fuji', number, `取引先${i % 25}`, i, `2025-03-${String(1 + (i % 28)).padStart(2, '0')}`, {
    runId: `host-${host}`,
  });

test(
  'two hosts writing one new PostgreSQL archive at once lose nothing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const schema = testSchema();
    const hosts = await Promise.all([0, 1].map(() => PostgresArchive.open(TEST_POSTGRES_URL, { schema })));
    try {
      await Promise.all(
        hosts.map(async (archive, host) => {
          // Single records, several in flight per host (the pool has four connections)...
          const singles = Array.from({ length: 200 }, (_, i) => i);
          await Promise.all(
            [0, 1, 2, 3].map(async (lane) => {
              for (const i of singles.filter((k) => k % 4 === lane)) {
                await archive.record(entry(host, `H${host}-${i}`, i));
                if (i % 10 === 0) await archive.record(entry(host, `SHARED-${i}`, i));
              }
            }),
          );
          // ...and batches whose customers and shared invoices overlap the other host's, in another order.
          for (let b = 0; b < 5; b++) {
            const batch = Array.from({ length: 50 }, (_, k) =>
              entry(host, `B${host}-${b}-${k}`, host ? 49 - k : k),
            );
            batch.push(entry(host, `SHARED-BATCH-${b}`, b));
            await archive.recordMany(host ? batch.reverse() : batch);
          }
        }),
      );
      const reader = hosts[0]!;
      const numbers = new Set<string>();
      let total = 0;
      for (let offset = 0; ; offset += 1000) {
        const page = await reader.search({ tenant: 'fuji', limit: 1000, offset });
        total = page.total;
        for (const r of page.rows) numbers.add(r.invoiceNumber);
        if (page.rows.length < 1000) break;
      }
      const expected = 2 * 200 + 20 + 2 * 5 * 50 + 5;
      assert.equal(total, expected);
      assert.equal(numbers.size, expected);
      for (let i = 0; i < 200; i++)
        for (const h of [0, 1]) assert.ok(numbers.has(`H${h}-${i}`), `H${h}-${i}`);
      for (let i = 0; i < 200; i += 10) assert.equal((await reader.find('fuji', `SHARED-${i}`)).length, 1);
      // 25 customers, each created once although both hosts raced to create them.
      const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await db.connect();
      try {
        const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".customers`);
        assert.equal(Number(rows[0]?.n), 25);
      } finally {
        await db.end();
      }
      const perCustomer = await reader.search({ tenant: 'fuji', customer: '取引先24', limit: 1000 });
      assert.ok(perCustomer.total > 0);
      assert.ok(perCustomer.rows.every((r) => r.customer === '取引先24'));
    } finally {
      await Promise.all(hosts.map((h) => h.close()));
    }
  },
);
