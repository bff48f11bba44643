// Test fixture for the sandbox tests: a sandbox in a temp dataDir, and raw-fetch helpers that speak
// CSC v2 the way any client would (token, CSC call, authorize with PIN + TOTP). No sandbox internals.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateSync } from 'otplib';
import pino from 'pino';
import {
  startSandbox,
  type SandboxCredential,
  type SandboxHandle,
  type SandboxOptions,
} from '../../src/sandbox';

export const SHA256_OID = '2.16.840.1.101.3.4.2.1';
export const RSA_OID = '1.2.840.113549.1.1.1';
export const SHA256_RSA_OID = '1.2.840.113549.1.1.11';
export const ECDSA_SHA256_OID = '1.2.840.10045.4.3.2';

export interface Fixture {
  sandbox: SandboxHandle;
  dataDir: string;
  close(): Promise<void>;
}

export async function makeDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'sealer-sandbox-test-'));
}

export async function startFixture(
  options: Partial<SandboxOptions> = {},
  dataDir?: string,
): Promise<Fixture> {
  const dir = dataDir ?? (await makeDataDir());
  const sandbox = await startSandbox({ logger: pino({ level: 'silent' }), ...options, dataDir: dir });
  return {
    sandbox,
    dataDir: dir,
    async close() {
      await sandbox.close();
      if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

export function credential(sandbox: SandboxHandle, credentialId: string): SandboxCredential {
  const cred = sandbox.credentials.find((c) => c.credentialId === credentialId);
  if (!cred) throw new Error(`no credential ${credentialId}`);
  return cred;
}

export async function secret(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

export interface HttpResult {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function toResult(res: Response): Promise<HttpResult> {
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: res.headers,
  };
}

export async function tokenRequest(
  sandbox: SandboxHandle,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return toResult(
    await fetch(`${sandbox.oauth2Url}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    }),
  );
}

export async function getToken(sandbox: SandboxHandle, clientId: string): Promise<string> {
  const cred = sandbox.credentials.find((c) => c.clientId === clientId);
  if (!cred) throw new Error(`no client ${clientId}`);
  const res = await tokenRequest(sandbox, {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_secret: await secret(cred.clientSecretFile),
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.access_token as string;
}

export async function csc(
  sandbox: SandboxHandle,
  method: string,
  token: string | undefined,
  body: unknown,
): Promise<HttpResult> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  return toResult(
    await fetch(`${sandbox.url}/${method}`, { method: 'POST', headers, body: JSON.stringify(body) }),
  );
}

export async function currentOtp(cred: SandboxCredential): Promise<string> {
  return generateSync({ secret: await secret(cred.totpSecretFile) });
}

/** A 6-digit code that is valid for none of the steps the sandbox accepts (now and one either side). */
export async function wrongOtp(cred: SandboxCredential): Promise<string> {
  const totpSecret = await secret(cred.totpSecretFile);
  const now = Math.floor(Date.now() / 1000);
  const valid = new Set(
    [-60, -30, 0, 30, 60].map((d) => generateSync({ secret: totpSecret, epoch: now + d })),
  );
  let n = Number(generateSync({ secret: totpSecret }));
  let code: string;
  do {
    n = (n + 1) % 1_000_000;
    code = String(n).padStart(6, '0');
  } while (valid.has(code));
  return code;
}

export async function authorize(
  sandbox: SandboxHandle,
  token: string,
  cred: SandboxCredential,
  extra: Record<string, unknown> = {},
  factors: { pin?: string; otp?: string } = {},
): Promise<HttpResult> {
  return csc(sandbox, 'credentials/authorize', token, {
    credentialID: cred.credentialId,
    numSignatures: 1,
    authData: [
      { id: 'PIN', value: factors.pin ?? (await secret(cred.pinFile)) },
      { id: 'OTP', value: factors.otp ?? (await currentOtp(cred)) },
    ],
    ...extra,
  });
}

export function digestOf(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function b64(buf: Buffer): string {
  return buf.toString('base64');
}

/** Asserts-free accessor: the CSC error body of a refusal, for concise assertions. */
export function errorOf(res: HttpResult): { status: number; error: unknown; description: string } {
  return { status: res.status, error: res.body.error, description: String(res.body.error_description ?? '') };
}
