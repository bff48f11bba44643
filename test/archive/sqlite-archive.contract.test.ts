// The archive contract on the embedded SQLite file (the default storage).
import path from 'node:path';
import { before } from 'node:test';
import { SqliteArchive } from '../../src/archive';
import { tempDir } from '../helpers/temp-dir';
import { archiveContract } from './archive-contract';

let dir = '';
let fresh = 0;
before(async () => {
  dir = await tempDir('sealer-archive-');
});

archiveContract({
  // A folder that does not exist yet: the archive creates it.
  open: async (options) => new SqliteArchive(path.join(dir, 'shared', '.archive', 'index.sqlite'), options),
  openEmpty: async (options) =>
    new SqliteArchive(path.join(dir, `empty-${++fresh}`, 'index.sqlite'), options),
  // The default (each filter's own index drives), 1 (the date index always drives), 30 (a mix).
  probeLimits: [100_000, 1, 30],
});
