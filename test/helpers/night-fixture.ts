// The setup a night test repeats: a sandbox in the test's temp folder, sample exports for its tenants,
// job definition files in a jobs/ folder, and the factors and secrets the sandbox provisioned.
import fs from 'node:fs/promises';
import path from 'node:path';
import { after } from 'node:test';
import pino from 'pino';
import { startSandbox, type SandboxHandle, type SandboxOptions } from '../../src/sandbox';
import { writeSampleExport, SAMPLE_COLUMNS, type SampleExportOptions } from '../../src/demo/sample-exports';

export interface TestSandboxOptions extends Partial<SandboxOptions> {
  /** Log every sandbox line (level trace) to this file; by default the sandbox logs nothing. */
  logFile?: string;
}

/**
 * Starts a sandbox with 1-second TOTP steps whose data lives in `<dir>/sandbox`, closed when the test
 * file finishes. `options` go over those defaults.
 */
export async function startTestSandbox(
  dir: string,
  options: TestSandboxOptions = {},
): Promise<SandboxHandle> {
  const { logFile, ...rest } = options;
  const sandbox = await startSandbox({
    totpPeriodSec: 1,
    dataDir: path.join(dir, 'sandbox'),
    logger: logFile
      ? pino({ level: 'trace' }, pino.destination({ dest: logFile, sync: true }))
      : pino({ level: 'silent' }),
    ...rest,
  });
  after(() => sandbox.close());
  return sandbox;
}

/** The folder of a tenant's secrets in the sandbox started by `startTestSandbox(dir)`. */
export function sandboxSecretsDir(dir: string, tenant: string): string {
  return path.join(dir, 'sandbox', 'secrets', tenant);
}

/** One secret file of a tenant in the sandbox started by `startTestSandbox(dir)`, trimmed. */
export async function sandboxSecret(dir: string, tenant: string, file: string): Promise<string> {
  return (await fs.readFile(path.join(sandboxSecretsDir(dir, tenant), file), 'utf8')).trim();
}

/** A job's `pin` and `totpSecret` references to a credential's files in a tenant's secrets folder. */
export function factorFileRefs(
  secretsDir: string,
  credentialId: string,
): { pin: string; totpSecret: string } {
  return {
    pin: `file:${secretsDir}/${credentialId}.pin`,
    totpSecret: `file:${secretsDir}/${credentialId}.totp`,
  };
}

const SAMPLE_TENANTS = {
  sakura: { tenantName: 'Sakura Shoji K.K.', invoicePrefix: 'SKR' },
  fuji: { tenantName: 'Fuji Denki K.K.', invoicePrefix: 'FJD' },
} as const;

/** Writes a sample export of `count` invoices for sakura (SKR-…) or fuji (FJD-…) into `folder`. */
export async function writeTenantExport(
  folder: string,
  tenant: keyof typeof SAMPLE_TENANTS,
  count: number,
  encoding: SampleExportOptions['encoding'] = 'utf8',
): Promise<void> {
  await writeSampleExport({ dir: folder, ...SAMPLE_TENANTS[tenant], count, encoding });
}

export interface JobFileOptions {
  tenant: string;
  credentialId: string;
  providerUrl: string;
  /** The tenant's secrets folder (e.g. `sandboxSecretsDir`): the job's clientSecret is its client-secret
   * file. Leave it out for a job that authenticates another way (or names clientSecret in `signing`). */
  secretsDir?: string;
  /** Merged over the signing block (providerUrl, clientId `<tenant>-app`, clientSecret, credentialId). */
  signing?: Record<string, unknown>;
  /** Merged over the export block (folder `../inbox/<tenant>`, SAMPLE_COLUMNS). */
  export?: Record<string, unknown>;
}

/**
 * Writes `<jobsDir>/<tenant>.json`, the job `<tenant>-nightly` (cron 02:00, outbox `../outbox`), creating
 * `jobsDir` if need be. Returns the file's path.
 */
export async function writeJobFile(jobsDir: string, o: JobFileOptions): Promise<string> {
  const file = path.join(jobsDir, `${o.tenant}.json`);
  await fs.mkdir(jobsDir, { recursive: true });
  await fs.writeFile(
    file,
    JSON.stringify({
      name: `${o.tenant}-nightly`,
      cron: '0 2 * * *',
      tenant: o.tenant,
      export: { folder: `../inbox/${o.tenant}`, columns: SAMPLE_COLUMNS, ...o.export },
      signing: {
        providerUrl: o.providerUrl,
        clientId: `${o.tenant}-app`,
        ...(o.secretsDir === undefined ? {} : { clientSecret: `file:${o.secretsDir}/client-secret` }),
        credentialId: o.credentialId,
        ...o.signing,
      },
      outbox: '../outbox',
    }),
  );
  return file;
}

/** `<jobsDir>/sakura.json` sealing with sakura's implicit credential (no PIN, no TOTP to wait for). */
export async function writeImplicitSakuraJob(
  dir: string,
  jobsDir: string,
  sandbox: SandboxHandle,
  signing: Record<string, unknown> = {},
): Promise<string> {
  return writeJobFile(jobsDir, {
    tenant: 'sakura',
    credentialId: 'sakura-eseal-implicit',
    providerUrl: sandbox.url,
    secretsDir: sandboxSecretsDir(dir, 'sakura'),
    signing: { custody: { mode: 'implicit' }, ...signing },
  });
}
