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

export async function resolveSecret(
  ref: SecretRef,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
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
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new JobConfigError(`secret reference ${ref}: cannot read ${file}`, { cause: err });
  }
}
