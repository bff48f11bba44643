// openArchive picks the storage from the spec, the default file sits beside the outbox, and an archive
// written by a newer sealer is refused rather than written to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  ArchiveError,
  PostgresArchive,
  SqliteArchive,
  TenantArchives,
  defaultArchiveFile,
  openArchive,
} from '../../src/archive';
import { SQLITE_SCHEMA_VERSION } from '../../src/archive/sqlite-schema';
import { POSTGRES_SCHEMA_VERSION } from '../../src/archive/postgres-schema';
import { WORKER_ARCHIVE_CACHE_MIB } from '../../src/queue/worker-defaults';
import { TEST_POSTGRES_URL, testSchema } from '../helpers/test-postgres';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { invoice } from './archive-fixture';

const opts = { timeout: TEST_TIMEOUT_MS };

test('defaultArchiveFile is <outbox>/.archive/index.sqlite, absolute', () => {
  assert.equal(defaultArchiveFile('/srv/outbox'), '/srv/outbox/.archive/index.sqlite');
  assert.equal(defaultArchiveFile('var/outbox'), path.resolve('var/outbox/.archive/index.sqlite'));
});

test('a path opens SQLite in WAL mode, creating its folder', opts, async () => {
  const outbox = path.join(await tempDir('sealer-archive-open-'), 'outbox');
  const archive = await openArchive(defaultArchiveFile(outbox));
  try {
    assert.ok(archive instanceof SqliteArchive);
    await archive.record(invoice('fuji', 'W-1', '株式会社テスト', 1, '2025-01-01'));
    const raw = new Database(defaultArchiveFile(outbox), { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(
        raw.prepare('SELECT max(version) FROM archive_schema').pluck().get(),
        SQLITE_SCHEMA_VERSION,
      );
    } finally {
      raw.close();
    }
  } finally {
    await archive.close();
  }
});

test(
  'an SQLite archive keeps a 64 MiB page cache unless told less (a worker asks for less)',
  opts,
  async () => {
    const dir = await tempDir('sealer-archive-cache-');
    const search = await openArchive(path.join(dir, 'search.sqlite'));
    const worker = new TenantArchives(() => path.join(dir, 'worker.sqlite'), {
      cacheMiB: WORKER_ARCHIVE_CACHE_MIB,
    });
    try {
      assert.ok(search instanceof SqliteArchive);
      assert.equal(search.pageCacheMiB(), 64);
      const tenant = await worker.forTenant('fuji');
      assert.ok(tenant instanceof SqliteArchive);
      assert.equal(tenant.pageCacheMiB(), WORKER_ARCHIVE_CACHE_MIB);
      assert.ok(WORKER_ARCHIVE_CACHE_MIB < 64);
    } finally {
      await search.close();
      await worker.close();
    }
  },
);

test(
  'postgres:// and postgresql:// URLs open PostgreSQL in the schema asked for, with a trigram index',
  opts,
  async () => {
    const schema = testSchema();
    for (const url of [TEST_POSTGRES_URL, TEST_POSTGRES_URL.replace(/^postgresql:/, 'postgres:')]) {
      const archive = await openArchive(url, { schema });
      try {
        assert.ok(archive instanceof PostgresArchive);
        assert.equal(archive.schema, schema);
        // pg_trgm is installable on the development and CI database; where it is not, this says so.
        assert.equal(archive.trigramIndex, true);
        await archive.record(invoice('fuji', `PG-${url.length}`, '株式会社テスト', 1, '2025-01-01'));
      } finally {
        await archive.close();
      }
    }
    const again = await PostgresArchive.open(TEST_POSTGRES_URL, { schema });
    try {
      assert.equal((await again.search({ tenant: 'fuji' })).total, 2);
    } finally {
      await again.close();
    }
  },
);

test('an SQLite archive from a newer sealer is refused', opts, async () => {
  const file = path.join(await tempDir('sealer-archive-newer-'), 'index.sqlite');
  await new SqliteArchive(file).close();
  const raw = new Database(file);
  raw.prepare('INSERT INTO archive_schema (version) VALUES (99)').run();
  raw.close();
  assert.throws(
    () => new SqliteArchive(file),
    new RegExp(`archive schema version 99 is newer than this sealer's \\(${SQLITE_SCHEMA_VERSION}\\)`),
  );
});

test(
  'an SQLite archive of schema 1 gains the registration number column and keeps its rows',
  opts,
  async () => {
    const file = path.join(await tempDir('sealer-archive-v1-'), 'index.sqlite');
    const first = new SqliteArchive(file);
    await first.record(invoice('fuji', 'OLD-1', '株式会社テスト', 1000, '2025-01-01'));
    await first.close();
    // Back to the shape version 1 wrote: no registration_number column, version 1 recorded.
    const raw = new Database(file);
    raw.exec(
      'ALTER TABLE invoices DROP COLUMN registration_number; DELETE FROM archive_schema WHERE version > 1',
    );
    raw.close();
    const archive = new SqliteArchive(file);
    try {
      await archive.record(
        invoice('fuji', 'NEW-1', '株式会社テスト', 2000, '2025-01-02', {
          registrationNumber: 'T8010001008846',
        }),
      );
      const { rows } = await archive.search({ tenant: 'fuji' });
      assert.deepEqual(
        rows.map((r) => [r.invoiceNumber, r.registrationNumber]),
        [
          ['OLD-1', undefined],
          ['NEW-1', 'T8010001008846'],
        ],
      );
    } finally {
      await archive.close();
    }
    const check = new Database(file, { readonly: true });
    assert.equal(
      check.prepare('SELECT max(version) FROM archive_schema').pluck().get(),
      SQLITE_SCHEMA_VERSION,
    );
    check.close();
  },
);

test(
  'a PostgreSQL archive of schema 1 gains the registration number column and keeps its rows',
  opts,
  async () => {
    const schema = testSchema();
    const first = await PostgresArchive.open(TEST_POSTGRES_URL, { schema });
    await first.record(invoice('fuji', 'OLD-1', '株式会社テスト', 1000, '2025-01-01'));
    await first.close();
    const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await db.connect();
    try {
      await db.query(`ALTER TABLE "${schema}".invoices DROP COLUMN registration_number`);
      await db.query(`DELETE FROM "${schema}".archive_schema WHERE version > 1`);
      const archive = await PostgresArchive.open(TEST_POSTGRES_URL, { schema });
      try {
        await archive.record(
          invoice('fuji', 'NEW-1', '株式会社テスト', 2000, '2025-01-02', {
            registrationNumber: 'T8010001008846',
          }),
        );
        const { rows } = await archive.search({ tenant: 'fuji' });
        assert.deepEqual(
          rows.map((r) => [r.invoiceNumber, r.registrationNumber]),
          [
            ['OLD-1', undefined],
            ['NEW-1', 'T8010001008846'],
          ],
        );
      } finally {
        await archive.close();
      }
      const { rows } = await db.query(`SELECT max(version) AS v FROM "${schema}".archive_schema`);
      assert.equal(rows[0].v, POSTGRES_SCHEMA_VERSION);
    } finally {
      await db.end();
    }
  },
);

test('a PostgreSQL archive from a newer sealer is refused; a bad schema name too', opts, async () => {
  const schema = testSchema();
  await (await PostgresArchive.open(TEST_POSTGRES_URL, { schema })).close();
  const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await db.connect();
  try {
    await db.query(`INSERT INTO "${schema}".archive_schema (version) VALUES (99)`);
  } finally {
    await db.end();
  }
  await assert.rejects(
    PostgresArchive.open(TEST_POSTGRES_URL, { schema }),
    new RegExp(`version 99, newer than this sealer's \\(${POSTGRES_SCHEMA_VERSION}\\)`),
  );
  await assert.rejects(PostgresArchive.open(TEST_POSTGRES_URL, { schema: 'Robert"); DROP' }), ArchiveError);
});

test(
  'a database that cannot be reached is an ArchiveError that does not show the password',
  opts,
  async () => {
    const secret = 'hunter2-not-in-errors';
    await assert.rejects(openArchive(`postgresql://postgres:${secret}@127.0.0.1:1/test`), (err: unknown) => {
      assert.ok(err instanceof ArchiveError);
      const text = `${err.message} ${String((err as Error).cause)} ${JSON.stringify(err)}`;
      assert.ok(!text.includes(secret), text);
      return true;
    });
  },
);

test(
  'an SQLite archive in a folder that cannot be made is an ArchiveError naming the file',
  opts,
  async () => {
    const dir = await tempDir('sealer-archive-bad-');
    fs.writeFileSync(path.join(dir, 'not-a-folder'), 'x');
    const file = path.join(dir, 'not-a-folder', 'index.sqlite');
    assert.throws(
      () => new SqliteArchive(file),
      (err: unknown) => err instanceof ArchiveError && err.message.includes(file),
    );
  },
);
