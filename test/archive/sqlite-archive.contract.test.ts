// The archive contract on the embedded SQLite file (the default storage).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { SqliteArchive } from '../../src/archive';
import { archiveContract } from './archive-contract';

// Made here, at the top level, so that its removal is registered for the whole file.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealer-archive-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let fresh = 0;

archiveContract({
  // A folder that does not exist yet: the archive creates it.
  open: async (options) => new SqliteArchive(path.join(dir, 'shared', '.archive', 'index.sqlite'), options),
  openEmpty: async (options) =>
    new SqliteArchive(path.join(dir, `empty-${++fresh}`, 'index.sqlite'), options),
  // The default (each filter's own index drives), 1 (the date index always drives), 30 (a mix).
  probeLimits: [100_000, 1, 30],
});
