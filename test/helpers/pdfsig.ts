// poppler's pdfsig as an outside validator: it trusts only certificates in an NSS database, so a
// database with the given root is made once per test file.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dir';

const run = promisify(execFile);

export async function nssDbWithRoot(rootPemPath: string): Promise<string> {
  const dir = path.join(await tempDir('sealer-nss-'), 'db');
  await fs.mkdir(dir);
  await run('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password']);
  await run('certutil', [
    '-A',
    '-d',
    `sql:${dir}`,
    '-n',
    'sealer-test-root',
    '-t',
    'CT,C,C',
    '-i',
    rootPemPath,
  ]);
  return dir;
}

/** pdfsig's output for one file; pdfsig exits non-zero on some failures, so the output is returned either way. */
export async function pdfsig(file: string, nssDir?: string): Promise<string> {
  const args = nssDir ? ['-nssdir', `sql:${nssDir}`, file] : ['-nocert', file];
  try {
    const { stdout, stderr } = await run('pdfsig', args);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout ?? '') + (e.stderr ?? '');
  }
}
