// Loads and validates jobs/*.json. An invalid file fails with its path and the field that is wrong.
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { JobConfigError } from './job-config-error';
import { jobDefinitionSchema, type JobDefinition } from './job-definition';

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

export async function loadJobFile(file: string): Promise<JobDefinition> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new JobConfigError(`cannot read job definition ${file}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the error, which may be an inline secret: give the place only.
    const at = /position (\d+)/.exec((err as Error).message);
    const where = at ? ` at line ${text.slice(0, Number(at[1])).split('\n').length}` : '';
    throw new JobConfigError(`job definition ${file} is not valid JSON${where}`);
  }
  const parsed = jobDefinitionSchema.safeParse(raw);
  if (!parsed.success) {
    throw new JobConfigError(`job definition ${file} is invalid: ${describeIssues(parsed.error)}`);
  }
  const baseDir = path.dirname(path.resolve(file));
  const { signing } = parsed.data;
  return {
    ...parsed.data,
    file: path.resolve(file),
    baseDir,
    exportFolder: path.resolve(baseDir, parsed.data.export.folder),
    outboxRoot: path.resolve(baseDir, parsed.data.outbox),
    ...(signing.custody.mode === 'provider-held'
      ? { factorVaultDir: path.resolve(baseDir, signing.custody.vault) }
      : {}),
    ...(signing.caFile ? { caFilePath: path.resolve(baseDir, signing.caFile) } : {}),
    apiVersion: apiVersionOf(signing.apiVersion, signing.providerUrl),
  };
}

/** The CSC API version: as configured, else v1 for a base URL ending in /v1, else v2. */
export function apiVersionOf(
  configured: 'v1' | 'v2' | undefined,
  providerUrl: string | undefined,
): 'v1' | 'v2' {
  return configured ?? (/\/v1\/?$/.test(providerUrl ?? '') ? 'v1' : 'v2');
}

export async function loadJobs(dir: string): Promise<JobDefinition[]> {
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  } catch (err) {
    throw new JobConfigError(`cannot read job definitions folder ${dir}`, { cause: err });
  }
  const jobs = await Promise.all(entries.map((f) => loadJobFile(path.join(dir, f))));
  const seen = new Map<string, string>();
  for (const job of jobs) {
    const other = seen.get(job.name);
    if (other) throw new JobConfigError(`job name ${job.name} is defined twice: ${other} and ${job.file}`);
    seen.set(job.name, job.file);
  }
  checkTenantsAgree(jobs);
  return jobs;
}

export function findJob(jobs: JobDefinition[], name: string): JobDefinition {
  const job = jobs.find((j) => j.name === name);
  if (!job) {
    throw new JobConfigError(`no job named ${name}; known: ${jobs.map((j) => j.name).join(', ') || 'none'}`);
  }
  return job;
}

/** Jobs sealing with the same credential share its SADs, so they must agree on who authorises it. */
function checkTenantsAgree(jobs: JobDefinition[]): void {
  const byCredential = new Map<string, JobDefinition>();
  for (const job of jobs) {
    // By credential ID alone: a job may leave the provider URL to SEALER_PROVIDER_URL, so URLs cannot
    // tell two providers apart here; two tenants with one credential ID is refused either way.
    const key = job.signing.credentialId;
    const other = byCredential.get(key);
    if (!other) {
      byCredential.set(key, job);
      continue;
    }
    if (other.tenant !== job.tenant) {
      throw new JobConfigError(
        `credential ${job.signing.credentialId} is used by tenant ${other.tenant} (${other.file}) and tenant ${job.tenant} (${job.file}); a credential belongs to one tenant`,
      );
    }
    if (JSON.stringify(other.signing.custody) !== JSON.stringify(job.signing.custody)) {
      throw new JobConfigError(
        `jobs ${other.name} and ${job.name} use credential ${job.signing.credentialId} with different signing.custody`,
      );
    }
  }
}
