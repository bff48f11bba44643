// The archive contract on PostgreSQL (database `test`, a schema of this file's own, dropped after).
import { PostgresArchive } from '../../src/archive';
import { TEST_POSTGRES_URL, testSchema } from '../helpers/test-postgres';
import { archiveContract } from './archive-contract';

const shared = testSchema();

archiveContract({
  open: (options) => PostgresArchive.open(TEST_POSTGRES_URL, { ...options, schema: shared }),
  openEmpty: (options) => PostgresArchive.open(TEST_POSTGRES_URL, { ...options, schema: testSchema() }),
});
