// Secrets in job definitions are references, never values: `env:NAME` or `file:PATH` (relative to the
// job definition's folder). They are resolved only when needed and never logged.
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { JobConfigError } from './job-config-error';

export const secretRefSchema = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a secret reference: env:NAME or file:PATH');

export type SecretRef = z.infer<typeof secretRefSchema>;

export interface ResolveOptions {
  /**
   * The secret is a key (the key-encryption key): a `file:` reference must be readable and writable by
   * its owner only, as ssh demands of a private key. `what` names it in the refusal.
   */
  ownerOnly?: { what: string };
}

export async function resolveSecret(
  ref: SecretRef,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
  options: ResolveOptions = {},
): Promise<string> {
  // A value typed where a reference belongs (a raw key on a command line, say) must not be echoed.
  if (!secretRefSchema.safeParse(ref).success) {
    throw new JobConfigError(
      'a secret reference must be env:NAME or file:PATH (the value given is not shown)',
    );
  }
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (value === undefined || value === '') {
      throw new JobConfigError(`secret reference ${ref}: environment variable ${name} is not set`);
    }
    return value.trim();
  }
  const file = path.resolve(baseDir, ref.slice(5));
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new JobConfigError(`secret reference ${ref}: cannot read ${file}`, { cause: err });
  }
  try {
    // The mode is checked on the open file, so the file read is the file checked.
    if (options.ownerOnly) checkOwnerOnly((await handle.stat()).mode, file, options.ownerOnly.what);
    return (await handle.readFile('utf8')).trim();
  } catch (err) {
    if (err instanceof JobConfigError) throw err;
    throw new JobConfigError(`secret reference ${ref}: cannot read ${file}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** Refuses a key file that anyone but its owner may read or write (any group or other bit). */
function checkOwnerOnly(mode: number, file: string, what: string): void {
  if ((mode & 0o077) === 0) return;
  const shown = path.relative(process.cwd(), file);
  const name = shown && !shown.startsWith('..') && !path.isAbsolute(shown) ? shown : file;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  throw new JobConfigError(
    `${what}: permissions ${octal} for ${name} are too open; it must be readable by its owner only (chmod 600)`,
  );
}
