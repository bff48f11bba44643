// Loads and validates jobs/*.json. An invalid file is named with its path and the field that is wrong;
// one broken file is left out with its reason, never the whole folder (loadJobSet).
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { JobConfigError } from './job-config-error';
import { jobDefinitionSchema, type JobDefinition } from './job-definition';
import { groupBy } from '../common/group-by';

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
    ...(signing.trustRoots
      ? { trustRootPaths: signing.trustRoots.map((f) => path.resolve(baseDir, f)) }
      : {}),
    ...(signing.timestamp?.caFile
      ? { timestampCaFilePath: path.resolve(baseDir, signing.timestamp.caFile) }
      : {}),
    ...(signing.appearance?.image
      ? { appearanceImagePath: path.resolve(baseDir, signing.appearance.image) }
      : {}),
    ...(parsed.data.invoice?.template.logo
      ? { invoiceLogoPath: path.resolve(baseDir, parsed.data.invoice.template.logo) }
      : {}),
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

/** A job definition that cannot be used: the file, the job's name as far as it can be read, and why. */
export interface JobProblem {
  file: string;
  /** the name in the file's JSON, else the file name without `.json` */
  job: string;
  /** the whole message, naming the file and the field or rule */
  reason: string;
  error: JobConfigError;
}

/** What a jobs folder holds: the definitions that can run, and one problem per file that cannot. */
export interface JobSet {
  jobs: JobDefinition[];
  problems: JobProblem[];
}

/** The job's name for a problem: the raw JSON's `name` if the file has one, else the file name. */
async function nameOf(file: string): Promise<string> {
  try {
    const raw: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    const name = (raw as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && name.length > 0 && name.length <= 64) return name;
  } catch {
    // unreadable or not JSON: the file name stands in
  }
  return path.basename(file, '.json');
}

/**
 * Loads every `*.json` of `dir`. One tenant's broken file never stops the others: a file that is
 * invalid, or that breaks a rule across files (a job name defined twice, a credential claimed by two
 * tenants or with two custodies), is left out and named in `problems`; the rest are returned.
 * Only a folder that cannot be read at all throws.
 */
export async function loadJobSet(dir: string): Promise<JobSet> {
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  } catch (err) {
    throw new JobConfigError(`cannot read job definitions folder ${dir}`, { cause: err });
  }
  const problems: JobProblem[] = [];
  const loaded: JobDefinition[] = [];
  for (const f of entries) {
    const file = path.resolve(dir, f);
    try {
      loaded.push(await loadJobFile(file));
    } catch (err) {
      if (!(err instanceof JobConfigError)) throw err;
      problems.push({ file, job: await nameOf(file), reason: err.message, error: err });
    }
  }
  // The first rule a job breaks is its reason.
  const refused = new Map<JobDefinition, JobConfigError>();
  for (const [job, error] of [...duplicateNames(loaded), ...credentialConflicts(loaded)]) {
    if (!refused.has(job)) refused.set(job, error);
  }
  for (const [job, error] of refused) {
    problems.push({ file: job.file, job: job.name, reason: error.message, error });
  }
  problems.sort((a, b) => a.file.localeCompare(b.file));
  return { jobs: loaded.filter((j) => !refused.has(j)), problems };
}

/**
 * Every job of `dir`, or a JobConfigError naming every problem: for callers that need the whole set
 * to be right. The night's commands (enqueue, schedule, the CLI context) use `loadJobSet`.
 */
export async function loadJobs(dir: string): Promise<JobDefinition[]> {
  const { jobs, problems } = await loadJobSet(dir);
  const [first] = problems;
  if (first && problems.length === 1) throw first.error;
  if (first) {
    throw new JobConfigError(
      `${problems.length} job definitions cannot be used: ${problems.map((p) => p.reason).join('; ')}`,
      { cause: first.error },
    );
  }
  return jobs;
}

/**
 * The job named `name`. A job left out at load (`problems`) is named with the reason it cannot run, so
 * `sealer enqueue broken-job` says what is wrong rather than that it does not exist.
 */
export function findJob(jobs: JobDefinition[], name: string, problems: JobProblem[] = []): JobDefinition {
  const job = jobs.find((j) => j.name === name);
  if (job) return job;
  const broken = problems.find((p) => p.job === name);
  if (broken) {
    throw new JobConfigError(`job ${name} cannot be used: ${broken.reason}`, { cause: broken.error });
  }
  throw new JobConfigError(
    `no job named ${name}; known: ${jobs.map((j) => j.name).join(', ') || 'none'}` +
      (problems.length ? `; left out as broken: ${problems.map((p) => p.job).join(', ')}` : ''),
  );
}

/** Two files with one job name: neither is taken, since either could be the one meant. */
function duplicateNames(jobs: JobDefinition[]): [JobDefinition, JobConfigError][] {
  const out: [JobDefinition, JobConfigError][] = [];
  for (const [name, same] of groupBy(jobs, (j) => j.name)) {
    if (same.length < 2) continue;
    const error = new JobConfigError(
      `job name ${name} is defined twice: ${same.map((j) => j.file).join(' and ')}`,
    );
    for (const job of same) out.push([job, error]);
  }
  return out;
}

/**
 * Jobs sealing with the same credential share its SADs, so they must agree on who authorises it. When
 * they do not, every job of that credential is refused: whose credential it truly is cannot be told
 * from here, and sealing one tenant's invoices with another's credential is the worse mistake.
 */
function credentialConflicts(jobs: JobDefinition[]): [JobDefinition, JobConfigError][] {
  const out: [JobDefinition, JobConfigError][] = [];
  // By credential ID alone: a job may leave the provider URL to SEALER_PROVIDER_URL, so URLs cannot
  // tell two providers apart here; two tenants with one credential ID is refused either way.
  for (const [credentialId, same] of groupBy(jobs, (j) => j.signing.credentialId)) {
    const first = same[0]!;
    const otherTenant = same.find((j) => j.tenant !== first.tenant);
    const otherCustody = same.find(
      (j) => JSON.stringify(j.signing.custody) !== JSON.stringify(first.signing.custody),
    );
    let error: JobConfigError | undefined;
    if (otherTenant) {
      error = new JobConfigError(
        `credential ${credentialId} is used by tenant ${first.tenant} (${first.file}) and tenant ${otherTenant.tenant} (${otherTenant.file}); a credential belongs to one tenant`,
      );
    } else if (otherCustody) {
      error = new JobConfigError(
        `jobs ${first.name} and ${otherCustody.name} use credential ${credentialId} with different signing.custody (${first.file}, ${otherCustody.file})`,
      );
    }
    if (error) for (const job of same) out.push([job, error]);
  }
  return out;
}
