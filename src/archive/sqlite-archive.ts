// The archive on an embedded SQLite file (the default): WAL, so that readers never wait for the
// worker's writes, and a busy timeout, since several `sealer work` processes on one host write the
// same file. Each write is its own short IMMEDIATE transaction: a process takes the write lock up
// front instead of failing when it tries to upgrade a read.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ArchiveIndex, ArchiveQuery, ArchiveSearchResult, ArchivedInvoice } from './archive-index';
import { ArchiveError } from './archive-error';
import { DEFAULT_COUNT_CAP, checkEntry, checkQuery } from './check-query';
import { foldCustomer } from './fold-customer';
import { migrateSqlite } from './sqlite-schema';
import { toInvoice, type InvoiceRow } from './invoice-row';

export interface SqliteArchiveOptions {
  /** How long (ms) a write waits for another process's write lock before failing. Default 10000. */
  busyTimeoutMs?: number;
  /** `total` counts at most this many matches, then says totalCapped. Default 10000. */
  countCap?: number;
  /**
   * A search counts each of its filters alone up to this many matches to choose the index that
   * drives it (see search()). Default 100000.
   */
  probeLimit?: number;
  /** Page cache per connection, MiB: enough for the indexes keeps searches and bulk loads in memory. Default 64. */
  cacheMiB?: number;
}

const COLUMNS = `i.tenant, i.invoice_number, c.name AS customer, i.amount, i.issue_date, i.file,
  i.sealed_sha256, i.source_sha256, i.level, i.sealed_at, i.certificate_serial, i.timestamp_at, i.job,
  i.run_id, i.registration_number`;

export class SqliteArchive implements ArchiveIndex {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly countCap: number;
  private readonly probeLimit: number;
  private readonly upsertCustomer: Database.Statement;
  private readonly customerId: Database.Statement;
  private readonly upsertInvoice: Database.Statement;
  private readonly findRows: Database.Statement;
  private readonly matchingCustomers: Database.Statement;
  private closed = false;

  /** Opens (creating the file and its folder if need be) and brings the schema up to date. */
  constructor(file: string, options: SqliteArchiveOptions = {}) {
    this.file = path.resolve(file);
    this.countCap = options.countCap ?? DEFAULT_COUNT_CAP;
    this.probeLimit = options.probeLimit ?? 100_000;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      this.db = new Database(this.file);
    } catch (err) {
      throw new ArchiveError(`cannot open the archive ${this.file}`, { cause: err });
    }
    try {
      // busy_timeout first: switching to WAL itself needs the lock another process may hold.
      this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
      this.db.pragma('journal_mode = WAL');
      // FULL: an invoice the worker has delivered stays in the index through a power cut too.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma(`cache_size = ${-1024 * (options.cacheMiB ?? 64)}`);
      migrateSqlite(this.db, this.file);
    } catch (err) {
      this.db.close();
      throw err instanceof ArchiveError
        ? err
        : new ArchiveError(`cannot prepare the archive ${this.file}`, { cause: err });
    }
    // Statistics where they are missing or stale, sampled (analysis_limit) so that opening a large
    // archive stays quick. Best effort: search() does not depend on them for its choice of index.
    try {
      this.db.pragma('analysis_limit = 1000');
      this.db.pragma('optimize = 0x10002');
    } catch {
      // another process held the write lock past the busy timeout: the next open or close will do it
    }
    this.upsertCustomer = this.db.prepare(
      'INSERT INTO customers (tenant, name, folded) VALUES (?, ?, ?) ON CONFLICT (tenant, name) DO NOTHING',
    );
    this.customerId = this.db.prepare('SELECT id FROM customers WHERE tenant = ? AND name = ?').pluck();
    this.upsertInvoice = this.db.prepare(
      `INSERT INTO invoices (tenant, invoice_number, source_sha256, customer_id, amount, issue_date, file,
         sealed_sha256, level, sealed_at, certificate_serial, timestamp_at, job, run_id, registration_number)
       VALUES (@tenant, @invoiceNumber, @sourceSha256, @customerId, @amount, @issueDate, @file,
         @sealedSha256, @level, @sealedAt, @certificateSerial, @timestampAt, @job, @runId,
         @registrationNumber)
       ON CONFLICT (tenant, invoice_number, source_sha256) DO UPDATE SET
         customer_id = excluded.customer_id, amount = excluded.amount, issue_date = excluded.issue_date,
         file = excluded.file, sealed_sha256 = excluded.sealed_sha256, level = excluded.level,
         sealed_at = excluded.sealed_at, certificate_serial = excluded.certificate_serial,
         timestamp_at = excluded.timestamp_at, job = excluded.job, run_id = excluded.run_id,
         registration_number = coalesce(excluded.registration_number, registration_number)`,
    );
    this.findRows = this.db.prepare(
      `SELECT ${COLUMNS} FROM invoices i JOIN customers c ON c.id = i.customer_id
       WHERE i.tenant = ? AND i.invoice_number = ? ORDER BY i.sealed_at DESC, i.id DESC`,
    );
    this.matchingCustomers = this.db
      .prepare('SELECT id FROM customers WHERE tenant = ? AND instr(folded, ?) > 0')
      .pluck();
  }

  async record(entry: ArchivedInvoice): Promise<void> {
    await this.recordMany([entry]);
  }

  /** Records many entries in one transaction (a bulk load, a rebuild): all or none. */
  async recordMany(entries: readonly ArchivedInvoice[]): Promise<void> {
    this.assertOpen();
    for (const entry of entries) checkEntry(entry);
    const write = this.db.transaction((batch: readonly ArchivedInvoice[]) => {
      for (const e of batch) {
        this.upsertCustomer.run(e.tenant, e.customer, foldCustomer(e.customer));
        const customerId = this.customerId.get(e.tenant, e.customer) as number;
        this.upsertInvoice.run({
          ...e,
          customerId,
          issueDate: e.issueDate ?? null,
          timestampAt: e.timestampAt ?? null,
          registrationNumber: e.registrationNumber ?? null,
        });
      }
    });
    try {
      write.immediate(entries);
    } catch (err) {
      throw new ArchiveError(`cannot record ${entries.length} invoice(s) in the archive ${this.file}`, {
        cause: err,
      });
    }
  }

  async search(query: ArchiveQuery): Promise<ArchiveSearchResult> {
    this.assertOpen();
    const q = checkQuery(query);
    const params: Record<string, unknown> = { ...q, cap: this.countCap + 1, probe: this.probeLimit };
    const filters: Array<{ index: string; terms: string }> = [];
    const dates: string[] = [];
    if (q.issueDateFrom !== undefined) dates.push('i.issue_date >= @issueDateFrom');
    if (q.issueDateTo !== undefined) dates.push('i.issue_date <= @issueDateTo');
    if (dates.length > 0) filters.push({ index: 'invoices_by_date', terms: dates.join(' AND ') });
    const amounts: string[] = [];
    if (q.amountMin !== undefined) amounts.push('i.amount >= @amountMin');
    if (q.amountMax !== undefined) amounts.push('i.amount <= @amountMax');
    if (amounts.length > 0) filters.push({ index: 'invoices_by_amount', terms: amounts.join(' AND ') });
    if (q.customer !== undefined) {
      const ids = this.matchingCustomers.all(q.tenant, q.customer) as number[];
      if (ids.length === 0) return { rows: [], total: 0 };
      params.customerIds = JSON.stringify(ids);
      filters.push({
        index: 'invoices_by_customer',
        terms: 'i.customer_id IN (SELECT value FROM json_each(@customerIds))',
      });
    }
    // The index that drives the search is chosen here, not by the planner, whose statistics a growing
    // archive may lack: each filter alone is counted through its own index, reading at most
    // probeLimit entries; the filter with the fewest matches drives if it has fewer than that (read
    // them, sort them), else the date index does, which is in result order, so a page stops early
    // and nothing large is sorted.
    const probed = filters.map((f) => ({
      ...f,
      count: this.db
        .prepare(
          `SELECT count(*) FROM (SELECT 1 FROM invoices i INDEXED BY ${f.index}
           WHERE i.tenant = @tenant AND ${f.terms} LIMIT @probe)`,
        )
        .pluck()
        .get(params) as number,
    }));
    const fewest = probed.reduce<(typeof probed)[number] | undefined>(
      (best, f) => (best === undefined || f.count < best.count ? f : best),
      undefined,
    );
    const driver = fewest !== undefined && fewest.count < this.probeLimit ? fewest.index : 'invoices_by_date';
    const filter = ['i.tenant = @tenant', ...filters.map((f) => f.terms)].join(' AND ');
    // The page's ids come off a covering index; only the rows of the page are then read, so a deep
    // offset skips index entries, not table rows.
    const rows = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM (SELECT i.id FROM invoices i INDEXED BY ${driver} WHERE ${filter}
           ORDER BY i.issue_date, i.invoice_number, i.id LIMIT @limit OFFSET @offset) p
         JOIN invoices i ON i.id = p.id JOIN customers c ON c.id = i.customer_id
         ORDER BY i.issue_date, i.invoice_number, i.id`,
      )
      .all(params) as InvoiceRow[];
    // One filter alone has been counted already, if its probe ran to the end or past the cap.
    const single = probed.length === 1 ? probed[0]!.count : undefined;
    const counted =
      single !== undefined && (single < this.probeLimit || this.probeLimit > this.countCap)
        ? single
        : (this.db
            .prepare(
              `SELECT count(*) FROM (SELECT 1 FROM invoices i INDEXED BY ${driver} WHERE ${filter} LIMIT @cap)`,
            )
            .pluck()
            .get(params) as number);
    const result: ArchiveSearchResult = {
      rows: rows.map(toInvoice),
      total: Math.min(counted, this.countCap),
    };
    if (counted > this.countCap) result.totalCapped = true;
    return result;
  }

  async find(tenant: string, invoiceNumber: string): Promise<ArchivedInvoice[]> {
    this.assertOpen();
    return (this.findRows.all(tenant, invoiceNumber) as InvoiceRow[]).map(toInvoice);
  }

  /** Fresh planner statistics (after a bulk load; close() refreshes them where they went stale). */
  async optimize(): Promise<void> {
    this.assertOpen();
    this.db.pragma('analysis_limit = 0');
    this.db.exec('ANALYZE');
    this.db.pragma('analysis_limit = 1000');
  }

  /** Bytes on disk: the file and its write-ahead log. */
  async storageBytes(): Promise<number> {
    const size = (f: string) => {
      try {
        return fs.statSync(f).size;
      } catch {
        return 0;
      }
    };
    return size(this.file) + size(`${this.file}-wal`);
  }

  /** This connection's page cache ceiling, MiB (what cacheMiB set). */
  pageCacheMiB(): number {
    const pages = this.db.pragma('cache_size', { simple: true }) as number;
    return pages < 0
      ? -pages / 1024
      : (pages * (this.db.pragma('page_size', { simple: true }) as number)) / 2 ** 20;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.pragma('optimize');
    } catch {
      // Statistics are an optimisation: another process holding the lock must not fail a close.
    }
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new ArchiveError(`the archive ${this.file} is closed`);
  }
}
