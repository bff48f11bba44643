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
      assert.equal(raw.prepare('SELECT max(version) FROM archive_schema').pluck().get(), 1);
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
  assert.throws(() => new SqliteArchive(file), /archive schema version 99 is newer than this sealer's \(1\)/);
});

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
    /version 99, newer than this sealer's \(1\)/,
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
