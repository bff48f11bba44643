// The archive benchmark (`sealer bench archive --rows N`): fills a fresh index with N synthetic
// sealed invoices in bulk, then times each search shape a worker's users ask for, total included,
// and prints medians. It never touches a real archive: SQLite goes to a new file (a temporary folder
// unless named), PostgreSQL to a schema of its own that is dropped at the end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ArchiveQuery } from './archive-index';
import { ArchiveError } from './archive-error';
import { isPostgresSpec } from './open-archive';
import { PostgresArchive } from './postgres-archive';
import { SqliteArchive } from './sqlite-archive';
import { syntheticInvoices } from './synthetic-invoices';

export interface ArchiveBenchOptions {
  rows: number;
  /** an SQLite file that does not exist yet, or a PostgreSQL URL; default a temporary SQLite file */
  spec?: string;
  out: (line: string) => void;
  /** timed runs per shape (after one untimed warm-up). Default 7. */
  repeats?: number;
  /** keep the filled index instead of removing it */
  keep?: boolean;
  /**
   * Gather planner statistics after the fill (default true). false searches as an archive grown
   * delivery by delivery does before anything has analysed it.
   */
  statistics?: boolean;
}

export interface ArchiveBenchShape {
  name: string;
  query: ArchiveQuery;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** rows returned and the total the search reported */
  rows: number;
  total: number;
  totalCapped: boolean;
}

export interface ArchiveBenchResult {
  backend: 'sqlite' | 'postgres';
  /** the SQLite file or the PostgreSQL schema that was filled (gone afterwards unless `keep`) */
  location: string;
  rows: number;
  fillMs: number;
  rowsPerSecond: number;
  storageBytes: number;
  /** median ms of one record() of a new invoice into the filled index, as the worker records them */
  recordMs: number;
  shapes: ArchiveBenchShape[];
}

const TENANT = 'bench';

function shapes(): Array<{ name: string; query: Omit<ArchiveQuery, 'tenant'> }> {
  return [
    { name: 'date range, one month', query: { issueDateFrom: '2021-04-01', issueDateTo: '2021-04-30' } },
    { name: 'amount range ¥100,000-¥120,000', query: { amountMin: 100_000, amountMax: 120_000 } },
    { name: 'amount range, wide (¥10,000 and up)', query: { amountMin: 10_000 } },
    { name: 'customer substring 山田', query: { customer: '山田' } },
    { name: 'customer substring, one company', query: { customer: '株式会社横浜精機' } },
    { name: 'customer substring, folded ａｂｃ', query: { customer: 'ａｂｃ' } },
    { name: 'customer substring in most names 株式会社', query: { customer: '株式会社' } },
    {
      name: 'combined: 2020-2022, ¥50,000-¥500,000, 山田',
      query: {
        issueDateFrom: '2020-01-01',
        issueDateTo: '2022-12-31',
        amountMin: 50_000,
        amountMax: 500_000,
        customer: '山田',
      },
    },
    {
      name: 'combined narrow: one month, ¥10,000-¥20,000, 東京',
      query: {
        issueDateFrom: '2023-06-01',
        issueDateTo: '2023-06-30',
        amountMin: 10_000,
        amountMax: 20_000,
        customer: '東京',
      },
    },
    {
      name: 'wide date range (10 years), page 1',
      query: { issueDateFrom: '2016-01-01', issueDateTo: '2025-12-31' },
    },
    {
      name: 'wide date range, page at offset 10,000',
      query: { issueDateFrom: '2016-01-01', issueDateTo: '2025-12-31', offset: 10_000 },
    },
    {
      name: 'wide date range, page at offset 100,000, limit 1000',
      query: { issueDateFrom: '2016-01-01', issueDateTo: '2025-12-31', offset: 100_000, limit: 1000 },
    },
    { name: 'no match (customer 存在しない)', query: { customer: '存在しない' } },
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const ms = (v: number) => v.toFixed(v < 10 ? 2 : 1);

export async function benchArchive(options: ArchiveBenchOptions): Promise<ArchiveBenchResult> {
  if (!Number.isSafeInteger(options.rows) || options.rows < 1)
    throw new ArchiveError(`bench archive: rows must be a whole number above 0, not ${options.rows}`);
  const repeats = options.repeats ?? 7;
  const postgres = options.spec !== undefined && isPostgresSpec(options.spec);
  let tempFolder: string | undefined;
  let archive: SqliteArchive | PostgresArchive;
  if (postgres) {
    archive = await PostgresArchive.open(options.spec!, {
      schema: `sealer_archive_bench_${crypto.randomBytes(4).toString('hex')}`,
    });
  } else {
    let file = options.spec;
    if (file === undefined) {
      tempFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'sealer-bench-archive-'));
      file = path.join(tempFolder, 'index.sqlite');
    } else if (fs.existsSync(file)) {
      throw new ArchiveError(`bench archive: ${file} exists; the benchmark fills a new file only`);
    }
    archive = new SqliteArchive(file);
  }
  const backend = postgres ? 'postgres' : 'sqlite';
  const out = options.out;
  try {
    out(`archive benchmark: ${backend}, ${options.rows.toLocaleString('en')} invoices`);
    const fillStart = performance.now();
    let done = 0;
    for (const batch of syntheticInvoices({ tenant: TENANT, count: options.rows })) {
      await archive.recordMany(batch);
      done += batch.length;
      if (done % 200_000 === 0) out(`  filled ${done.toLocaleString('en')}`);
    }
    if (options.statistics !== false) await archive.optimize();
    const fillMs = performance.now() - fillStart;
    const storageBytes = await archive.storageBytes();
    const rowsPerSecond = Math.round(options.rows / (fillMs / 1000));
    out(
      `fill: ${(fillMs / 1000).toFixed(1)} s (${rowsPerSecond.toLocaleString('en')} rows/s, ` +
        `${options.statistics === false ? 'no statistics gathered' : 'statistics included'}), ` +
        `${(storageBytes / 1024 / 1024).toFixed(1)} MiB on disk`,
    );
    // What the worker does per delivery: one record() of a new invoice, its own durable transaction.
    const singles = [...syntheticInvoices({ tenant: TENANT, count: 200, seed: 2 })].flat();
    const recordTimes: number[] = [];
    for (const [i, e] of singles.entries()) {
      const t = performance.now();
      await archive.record({
        ...e,
        invoiceNumber: `ONE-${String(i).padStart(4, '0')}`,
        tenant: `${TENANT}-single`,
      });
      recordTimes.push(performance.now() - t);
    }
    const recordMs = median(recordTimes);
    out(`record(): ${ms(recordMs)} ms per invoice (median of ${singles.length}, one transaction each)`);
    out(`searches (median of ${repeats}, ms, total included; totals capped at 10,000):`);
    const results: ArchiveBenchShape[] = [];
    for (const shape of shapes()) {
      const query: ArchiveQuery = { tenant: TENANT, ...shape.query };
      let last = await archive.search(query); // warm-up: the first run pays for cold pages
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t = performance.now();
        last = await archive.search(query);
        times.push(performance.now() - t);
      }
      const result: ArchiveBenchShape = {
        name: shape.name,
        query,
        medianMs: median(times),
        minMs: Math.min(...times),
        maxMs: Math.max(...times),
        rows: last.rows.length,
        total: last.total,
        totalCapped: last.totalCapped === true,
      };
      results.push(result);
      out(
        `  ${shape.name.padEnd(52)} ${ms(result.medianMs).padStart(8)}  (min ${ms(result.minMs)}, max ${ms(result.maxMs)})` +
          `  rows ${result.rows}, total ${result.total}${result.totalCapped ? '+' : ''}`,
      );
    }
    const location = archive instanceof PostgresArchive ? archive.schema : archive.file;
    return {
      backend,
      location,
      rows: options.rows,
      fillMs,
      rowsPerSecond,
      storageBytes,
      recordMs,
      shapes: results,
    };
  } finally {
    if (archive instanceof PostgresArchive && !options.keep) await archive.dropSchema();
    await archive.close();
    if (tempFolder !== undefined && !options.keep) fs.rmSync(tempFolder, { recursive: true, force: true });
  }
}
