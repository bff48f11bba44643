// The archive on PostgreSQL, for several hosts sharing one index: same semantics as the SQLite file
// (upsert per tenant, invoice and source digest; folded customer substrings; issue date, invoice
// number order), in a schema of its own. Writes go in as arrays (unnest), so a bulk load and a
// single delivery take the same path.
import pg from 'pg';
import type { ArchiveIndex, ArchiveQuery, ArchiveSearchResult, ArchivedInvoice } from './archive-index';
import type { Logger } from '../common/logger';
import { ArchiveError } from './archive-error';
import { DEFAULT_COUNT_CAP, checkEntry, checkQuery } from './check-query';
import { foldCustomer } from './fold-customer';
import { migratePostgres, quoteIdent } from './postgres-schema';
import { toInvoice, type InvoiceRow } from './invoice-row';

export interface PostgresArchiveOptions {
  /** The schema holding the archive's tables. Default `sealer_archive`. */
  schema?: string;
  /** `total` counts at most this many matches, then says totalCapped. Default 10000. */
  countCap?: number;
  /** Most connections in the pool. Default 4. */
  maxConnections?: number;
  logger?: Logger;
}

export const DEFAULT_SCHEMA = 'sealer_archive';

const COLUMNS = `i.tenant, i.invoice_number, c.name AS customer, i.amount,
  to_char(i.issue_date, 'YYYY-MM-DD') AS issue_date, i.file, i.sealed_sha256, i.source_sha256, i.level,
  i.sealed_at, i.certificate_serial, i.timestamp_at, i.job, i.run_id, i.registration_number`;

/** `text` as a LIKE pattern matching it anywhere (backslash is LIKE's default escape). */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export class PostgresArchive implements ArchiveIndex {
  readonly schema: string;
  /** whether customer substrings have a pg_trgm index (false when the extension cannot be had) */
  readonly trigramIndex: boolean;
  private readonly pool: pg.Pool;
  private readonly countCap: number;
  private readonly s: string;
  private closed = false;

  private constructor(pool: pg.Pool, schema: string, trigramIndex: boolean, countCap: number) {
    this.pool = pool;
    this.schema = schema;
    this.s = quoteIdent(schema);
    this.trigramIndex = trigramIndex;
    this.countCap = countCap;
  }

  /** Connects and brings the schema up to date (creating it if need be). */
  static async open(url: string, options: PostgresArchiveOptions = {}): Promise<PostgresArchive> {
    const schema = options.schema ?? DEFAULT_SCHEMA;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
      throw new ArchiveError(`archive schema name ${JSON.stringify(schema)} must be 1-63 of [a-z0-9_]`);
    // Bounded waits: a database that stops answering must fail a write or a search, not hang the worker.
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
      statement_timeout: 30_000,
    });
    // An idle connection that breaks must not crash the worker; the next query reconnects.
    pool.on('error', (err) => options.logger?.warn({ err: err.message }, 'archive database connection lost'));
    let trigram: boolean;
    try {
      const client = await pool.connect();
      try {
        trigram = await migratePostgres(client, schema, options.logger);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end();
      if (err instanceof ArchiveError) throw err;
      // The URL may carry a password: name the schema, never the URL.
      throw new ArchiveError(`cannot open the PostgreSQL archive (schema ${schema})`, { cause: err });
    }
    return new PostgresArchive(pool, schema, trigram, options.countCap ?? DEFAULT_COUNT_CAP);
  }

  async record(entry: ArchivedInvoice): Promise<void> {
    await this.recordMany([entry]);
  }

  /** Records many entries in one transaction (a bulk load, a rebuild): all or none. */
  async recordMany(entries: readonly ArchivedInvoice[]): Promise<void> {
    this.assertOpen();
    for (const entry of entries) checkEntry(entry);
    // One row per key (the last wins, as separate records would), in key order: two writers then
    // take their row locks in the same order and cannot deadlock.
    const byKey = new Map<string, ArchivedInvoice>();
    for (const e of entries) byKey.set(JSON.stringify([e.tenant, e.invoiceNumber, e.sourceSha256]), e);
    const rows = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
    if (rows.length === 0) return;
    const customers = new Map<string, [string, string]>();
    for (const e of rows) customers.set(JSON.stringify([e.tenant, e.customer]), [e.tenant, e.customer]);
    const people = [...customers.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, c]) => c);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO ${this.s}.customers (tenant, name, folded)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (tenant, name) DO NOTHING`,
        [people.map((c) => c[0]), people.map((c) => c[1]), people.map((c) => foldCustomer(c[1]))],
      );
      const column = <T>(pick: (e: ArchivedInvoice) => T): T[] => rows.map(pick);
      await client.query(
        `INSERT INTO ${this.s}.invoices AS i (tenant, invoice_number, source_sha256, customer_id, amount,
           issue_date, file, sealed_sha256, level, sealed_at, certificate_serial, timestamp_at, job, run_id,
           registration_number)
         SELECT u.tenant, u.invoice_number, u.source_sha256, c.id, u.amount, u.issue_date, u.file,
           u.sealed_sha256, u.level, u.sealed_at, u.certificate_serial, u.timestamp_at, u.job, u.run_id,
           u.registration_number
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::date[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                     $15::text[])
           AS u (tenant, invoice_number, source_sha256, customer, amount, issue_date, file, sealed_sha256,
                 level, sealed_at, certificate_serial, timestamp_at, job, run_id, registration_number),
           ${this.s}.customers c
         WHERE c.tenant = u.tenant AND c.name = u.customer
         ON CONFLICT (tenant, invoice_number, source_sha256) DO UPDATE SET
           customer_id = excluded.customer_id, amount = excluded.amount, issue_date = excluded.issue_date,
           file = excluded.file, sealed_sha256 = excluded.sealed_sha256, level = excluded.level,
           sealed_at = excluded.sealed_at, certificate_serial = excluded.certificate_serial,
           timestamp_at = excluded.timestamp_at, job = excluded.job, run_id = excluded.run_id,
           registration_number = coalesce(excluded.registration_number, i.registration_number)`,
        [
          column((e) => e.tenant),
          column((e) => e.invoiceNumber),
          column((e) => e.sourceSha256),
          column((e) => e.customer),
          column((e) => String(e.amount)),
          column((e) => e.issueDate ?? null),
          column((e) => e.file),
          column((e) => e.sealedSha256),
          column((e) => e.level),
          column((e) => e.sealedAt),
          column((e) => e.certificateSerial),
          column((e) => e.timestampAt ?? null),
          column((e) => e.job),
          column((e) => e.runId),
          column((e) => e.registrationNumber ?? null),
        ],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw new ArchiveError(`cannot record ${rows.length} invoice(s) in the archive schema ${this.schema}`, {
        cause: err,
      });
    } finally {
      client.release();
    }
  }

  async search(query: ArchiveQuery): Promise<ArchiveSearchResult> {
    this.assertOpen();
    const q = checkQuery(query);
    const params: unknown[] = [q.tenant];
    const where: string[] = ['i.tenant = $1'];
    const add = (term: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(term(`$${params.length}`));
    };
    if (q.issueDateFrom !== undefined) add((n) => `i.issue_date >= ${n}::date`, q.issueDateFrom);
    if (q.issueDateTo !== undefined) add((n) => `i.issue_date <= ${n}::date`, q.issueDateTo);
    if (q.amountMin !== undefined) add((n) => `i.amount >= ${n}::bigint`, q.amountMin);
    if (q.amountMax !== undefined) add((n) => `i.amount <= ${n}::bigint`, q.amountMax);
    let customerCount: number | undefined;
    if (q.customer !== undefined) {
      const ids = (
        await this.pool.query<{ id: string }>(
          `SELECT id FROM ${this.s}.customers WHERE tenant = $1 AND folded LIKE $2`,
          [q.tenant, containsPattern(q.customer)],
        )
      ).rows.map((r) => r.id);
      if (ids.length === 0) return { rows: [], total: 0 };
      // As in SQLite: a capped count says whether these customers have few invoices (read them by
      // customer and sort) or many (walk the result order instead; `+ 0` keeps the customer index
      // out of that plan).
      customerCount = Number(
        (
          await this.pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM (SELECT 1 FROM ${this.s}.invoices i
             WHERE i.tenant = $1 AND i.customer_id = ANY ($2::bigint[]) LIMIT $3) t`,
            [q.tenant, ids, this.countCap + 1],
          )
        ).rows[0]?.n ?? 0,
      );
      params.push(ids);
      const inSet = (column: string) => `${column} = ANY ($${params.length}::bigint[])`;
      where.push(inSet(customerCount > this.countCap ? '(i.customer_id + 0)' : 'i.customer_id'));
    }
    const filter = where.join(' AND ');
    const n = params.length;
    const order = 'i.issue_date NULLS FIRST, i.invoice_number, i.id';
    // The page's ids come off a covering index; only the page's rows are then read, so a deep offset
    // skips index entries, not table rows.
    const page = this.pool.query<InvoiceRow>(
      `SELECT ${COLUMNS} FROM (SELECT i.id FROM ${this.s}.invoices i WHERE ${filter}
         ORDER BY ${order} LIMIT $${n + 1} OFFSET $${n + 2}) p
       JOIN ${this.s}.invoices i ON i.id = p.id JOIN ${this.s}.customers c ON c.id = i.customer_id
       ORDER BY ${order}`,
      [...params, q.limit, q.offset],
    );
    const count =
      customerCount !== undefined && where.length === 2
        ? Promise.resolve(customerCount)
        : this.pool
            .query<{ n: string }>(
              `SELECT count(*) AS n FROM (SELECT 1 FROM ${this.s}.invoices i WHERE ${filter} LIMIT $${n + 1}) t`,
              [...params, this.countCap + 1],
            )
            .then((r) => Number(r.rows[0]?.n ?? 0));
    const [rows, counted] = await Promise.all([page, count]);
    const result: ArchiveSearchResult = {
      rows: rows.rows.map(toInvoice),
      total: Math.min(counted, this.countCap),
    };
    if (counted > this.countCap) result.totalCapped = true;
    return result;
  }

  async find(tenant: string, invoiceNumber: string): Promise<ArchivedInvoice[]> {
    this.assertOpen();
    const { rows } = await this.pool.query<InvoiceRow>(
      `SELECT ${COLUMNS} FROM ${this.s}.invoices i JOIN ${this.s}.customers c ON c.id = i.customer_id
       WHERE i.tenant = $1 AND i.invoice_number = $2 ORDER BY i.sealed_at DESC, i.id DESC`,
      [tenant, invoiceNumber],
    );
    return rows.map(toInvoice);
  }

  /** Fresh planner statistics (after a bulk load; autovacuum keeps them up to date otherwise). */
  async optimize(): Promise<void> {
    // VACUUM too: it marks pages all-visible, which is what lets the covering indexes answer alone.
    await this.pool.query(`VACUUM (ANALYZE) ${this.s}.customers, ${this.s}.invoices`);
  }

  /** Bytes on disk of the archive's tables and indexes. */
  async storageBytes(): Promise<number> {
    const { rows } = await this.pool.query<{ bytes: string | null }>(
      `SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [this.schema],
    );
    return Number(rows[0]?.bytes ?? 0);
  }

  /** Drops the archive's schema and everything in it (tests, benchmarks). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.s} CASCADE`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private assertOpen(): void {
    if (this.closed) throw new ArchiveError(`the archive schema ${this.schema} is closed`);
  }
}
