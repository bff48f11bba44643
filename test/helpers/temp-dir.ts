import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A temporary folder removed when the test file finishes. */
export async function tempDir(label = 'sealer-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), label));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}
