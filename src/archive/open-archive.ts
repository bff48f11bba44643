// Which storage an archive spec names: a `postgres://` or `postgresql://` URL is PostgreSQL (several
// hosts sharing one index), anything else is the path of an SQLite file (the default, one host).
import path from 'node:path';
import type { ArchiveIndex } from './archive-index';
import type { Logger } from '../common/logger';
import { PostgresArchive } from './postgres-archive';
import { SqliteArchive } from './sqlite-archive';

export interface OpenArchiveOptions {
  /** `total` counts at most this many matches, then says totalCapped. Default 10000. */
  countCap?: number;
  /** SQLite: how long (ms) a write waits for another process's lock. Default 10000. */
  busyTimeoutMs?: number;
  /**
   * SQLite: page cache per connection, MiB (default 64, for searches). A worker that only appends rows
   * needs far less, and the cache fills as the file grows: one per tenant archive in every process.
   */
  cacheMiB?: number;
  /** PostgreSQL: the schema holding the archive's tables. Default `sealer_archive`. */
  schema?: string;
  /** PostgreSQL: most connections in the pool. Default 4. */
  maxConnections?: number;
  logger?: Logger;
}

export function isPostgresSpec(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** The archive a worker keeps by default: beside the outbox it indexes. */
export function defaultArchiveFile(outboxRoot: string): string {
  return path.join(path.resolve(outboxRoot), '.archive', 'index.sqlite');
}

export async function openArchive(spec: string, options: OpenArchiveOptions = {}): Promise<ArchiveIndex> {
  if (isPostgresSpec(spec)) return PostgresArchive.open(spec, options);
  return new SqliteArchive(spec, options);
}
