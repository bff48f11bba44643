export * from './archive-index';
export * from './archive-error';
export { checkQuery, DEFAULT_COUNT_CAP, DEFAULT_LIMIT, MAX_LIMIT, type CheckedQuery } from './check-query';
export { foldCustomer } from './fold-customer';
export { SqliteArchive, type SqliteArchiveOptions } from './sqlite-archive';
export { PostgresArchive, type PostgresArchiveOptions } from './postgres-archive';
export { openArchive, defaultArchiveFile, isPostgresSpec, type OpenArchiveOptions } from './open-archive';
export { benchArchive, type ArchiveBenchOptions, type ArchiveBenchResult } from './bench-archive';
