// The SQLite archive's schema, as numbered migrations applied in order and recorded in
// archive_schema, so that a newer sealer can extend a file an older one wrote (and an older one
// refuses a file it does not understand instead of writing rows it cannot read).
//
// Customers live in their own small table (one row per distinct 取引先 of a tenant, with the folded
// name): a substring search scans those few thousand names, not a million invoices, and works for
// one- and two-character queries (山田, ＡＢ) that a trigram index cannot serve.
import type Database from 'better-sqlite3';
import { ArchiveError } from './archive-error';

const MIGRATIONS: string[] = [
  `CREATE TABLE customers (
     id INTEGER PRIMARY KEY,
     tenant TEXT NOT NULL,
     name TEXT NOT NULL,
     folded TEXT NOT NULL,
     UNIQUE (tenant, name)
   );
   CREATE TABLE invoices (
     id INTEGER PRIMARY KEY,
     tenant TEXT NOT NULL,
     invoice_number TEXT NOT NULL,
     source_sha256 TEXT NOT NULL,
     customer_id INTEGER NOT NULL REFERENCES customers (id),
     amount INTEGER NOT NULL,
     issue_date TEXT,
     file TEXT NOT NULL,
     sealed_sha256 TEXT NOT NULL,
     level TEXT NOT NULL,
     sealed_at TEXT NOT NULL,
     certificate_serial TEXT NOT NULL,
     timestamp_at TEXT,
     job TEXT NOT NULL,
     run_id TEXT NOT NULL,
     UNIQUE (tenant, invoice_number, source_sha256)
   );
   -- One index per search shape. Each is ordered as results are (issue date, invoice number, id), so a
   -- page is read off it without sorting whenever the shape allows, and carries the other filter
   -- columns, so filtering and counting never visit the table: only the page's rows are fetched.
   CREATE INDEX invoices_by_date ON invoices (tenant, issue_date, invoice_number, id, amount, customer_id);
   CREATE INDEX invoices_by_amount ON invoices (tenant, amount, issue_date, invoice_number, id, customer_id);
   CREATE INDEX invoices_by_customer ON invoices (tenant, customer_id, issue_date, invoice_number, id, amount);`,
  // 2: the issuer's registration number of an invoice rendered from a data export (issue 11).
  `ALTER TABLE invoices ADD COLUMN registration_number TEXT;`,
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the file up to the current schema, in one write transaction (safe against a second process). */
export function migrateSqlite(db: Database.Database, file: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS archive_schema (version INTEGER NOT NULL)');
    const row = db.prepare('SELECT max(version) AS version FROM archive_schema').get() as {
      version: number | null;
    };
    const current = row.version ?? 0;
    if (current > MIGRATIONS.length)
      throw new ArchiveError(
        `${file}: archive schema version ${current} is newer than this sealer's (${MIGRATIONS.length})`,
      );
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.prepare('INSERT INTO archive_schema (version) VALUES (?)').run(v + 1);
    }
  }).immediate();
}
