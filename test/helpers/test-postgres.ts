// Real PostgreSQL for tests (SEALER_TEST_POSTGRES_URL, else database `test` on 127.0.0.1:5432 with
// trust auth), each test file in a schema of its own, dropped when the file finishes.
import crypto from 'node:crypto';
import { after } from 'node:test';
import pg from 'pg';

export const TEST_POSTGRES_URL =
  process.env.SEALER_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

/** A fresh schema name, dropped (with everything in it) after the test file. */
export function testSchema(label = 'sealer_test'): string {
  const schema = `${label}_${crypto.randomBytes(5).toString('hex')}`;
  after(async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  });
  return schema;
}
