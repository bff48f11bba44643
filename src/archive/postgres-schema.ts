// The PostgreSQL archive's schema: numbered migrations recorded in <schema>.archive_schema, applied
// under an advisory lock so that several workers starting at once migrate it exactly once. The
// same shape as the SQLite file (customers apart, one index per search shape ending in the result
// order), plus a pg_trgm index on folded names when the extension can be had.
import type { PoolClient } from 'pg';
import type { Logger } from '../common/logger';
import { ArchiveError } from './archive-error';

const migrations = (s: string): string[] => [
  `CREATE TABLE ${s}.customers (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     tenant text COLLATE "C" NOT NULL,
     name text COLLATE "C" NOT NULL,
     folded text COLLATE "C" NOT NULL,
     UNIQUE (tenant, name)
   );
   CREATE TABLE ${s}.invoices (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     tenant text COLLATE "C" NOT NULL,
     invoice_number text COLLATE "C" NOT NULL,
     source_sha256 text NOT NULL,
     customer_id bigint NOT NULL REFERENCES ${s}.customers (id),
     amount bigint NOT NULL,
     issue_date date,
     file text NOT NULL,
     sealed_sha256 text NOT NULL,
     level text NOT NULL,
     sealed_at text NOT NULL,
     certificate_serial text NOT NULL,
     timestamp_at text,
     job text NOT NULL,
     run_id text NOT NULL,
     UNIQUE (tenant, invoice_number, source_sha256)
   );
   -- As in the SQLite file: one index per search shape, in result order, carrying the other filter
   -- columns so that filtering, counting and skipping to a page are index-only scans. NULLS FIRST
   -- everywhere: undated invoices sort first, as they do in SQLite.
   CREATE INDEX invoices_by_date ON ${s}.invoices (tenant, issue_date NULLS FIRST, invoice_number, id)
     INCLUDE (amount, customer_id);
   CREATE INDEX invoices_by_amount ON ${s}.invoices (tenant, amount, issue_date NULLS FIRST, invoice_number, id)
     INCLUDE (customer_id);
   CREATE INDEX invoices_by_customer ON ${s}.invoices (tenant, customer_id, issue_date NULLS FIRST, invoice_number, id)
     INCLUDE (amount);`,
  // 2: the issuer's registration number of an invoice rendered from a data export (issue 11).
  `ALTER TABLE ${s}.invoices ADD COLUMN registration_number text COLLATE "C";`,
];

export const POSTGRES_SCHEMA_VERSION = migrations('x').length;

/** The schema of an installed pg_trgm, installing it if this role may; undefined if it cannot be had. */
async function trigramSchema(client: PoolClient, logger?: Logger): Promise<string | undefined> {
  const find = async () =>
    (
      await client.query<{ nspname: string }>(
        `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_trgm'`,
      )
    ).rows[0]?.nspname;
  const found = await find();
  if (found !== undefined) return found;
  try {
    await client.query('SAVEPOINT trgm');
    // In public, not in the archive's schema: dropping an archive must not drop others' indexes.
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public');
    await client.query('RELEASE SAVEPOINT trgm');
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT trgm');
    logger?.warn(
      { err: (err as Error).message },
      'pg_trgm unavailable: customer search scans the folded names without a trigram index',
    );
    return undefined;
  }
  return find();
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Brings `schema` up to the current version; returns whether folded names have a trigram index. */
export async function migratePostgres(client: PoolClient, schema: string, logger?: Logger): Promise<boolean> {
  const s = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    // Every migrating process of this schema waits here for the first to finish.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sealer-archive:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.archive_schema (version integer NOT NULL)`);
    const current =
      (await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.archive_schema`)).rows[0]
        ?.v ?? 0;
    const steps = migrations(s);
    if (current > steps.length)
      throw new ArchiveError(
        `archive schema ${schema} is at version ${current}, newer than this sealer's (${steps.length})`,
      );
    for (let v = current; v < steps.length; v++) {
      await client.query(steps[v]!);
      await client.query(`INSERT INTO ${s}.archive_schema (version) VALUES ($1)`, [v + 1]);
    }
    const trgm = await trigramSchema(client, logger);
    if (trgm !== undefined)
      await client.query(
        `CREATE INDEX IF NOT EXISTS customers_folded_trgm ON ${s}.customers
         USING gin (folded ${quoteIdent(trgm)}.gin_trgm_ops)`,
      );
    await client.query('COMMIT');
    return trgm !== undefined;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}
