// Test fixture for the sandbox tests: a sandbox in a temp dataDir (TOTP period 1 s, on a clock the
// tests move forward instead of waiting out time steps; optionally every lifetime on a ManualClock the
// test moves, so that nothing expires by the machine being slow), and raw-fetch helpers that speak CSC v2 the
// way any client would (token, CSC call, authorize with PIN + TOTP, never reusing a time step the
// sandbox accepted). No sandbox internals.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** A clock tests hold: what the sandbox (and a SadManager given it) reads, and moves on by sleeping. */
export interface FixtureClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface Fixture {
  sandbox: SandboxHandle;
  dataDir: string;
  /** The sandbox's TOTP clock (and its clock of lifetimes too, when one was given); pass it to a
   * SadManager as its `clock`. */
  clock: FixtureClock;
  close(): Promise<void>;
}

/** A clock for TOTP only: real time plus the time tests skipped (sleep() moves it on, at once). */
export class TestClock implements FixtureClock {
  private skipped = 0;
  readonly now = (): number => Date.now() + this.skipped;
  readonly sleep = async (ms: number): Promise<void> => {
    this.skipped += Math.max(0, ms);
  };
}

/**
 * A clock that stands still until the test moves it (advance, or a sleep of the code under test):
 * tokens, SADs and lockouts on it expire exactly when the test says, however slow the machine is.
 * It starts at the real time, so certificates and logs still look like today.
 */
export class ManualClock implements FixtureClock {
  private at: number;
  constructor(start = Date.now()) {
    this.at = start;
  }
  readonly now = (): number => this.at;
  readonly advance = (ms: number): void => {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new Error(`cannot move a clock by ${ms} ms`);
    this.at += ms;
  };
  readonly sleep = async (ms: number): Promise<void> => {
    this.advance(Math.max(0, ms));
  };
}

/** startFixture's options: the sandbox's, and `clock`, which then drives the sandbox's every clock
 * (lifetimes and TOTP); without it the sandbox keeps real time and a TestClock for TOTP. */
export type FixtureOptions = Partial<SandboxOptions> & { clock?: FixtureClock };

/** The TOTP clock of each sandbox started by startFixture, by URL. */
const clocks = new Map<string, FixtureClock>();

export function clockOf(sandbox: SandboxHandle): FixtureClock | undefined {
  return clocks.get(sandbox.url);
}

export async function makeDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'sealer-sandbox-test-'));
}

export async function startFixture(options: FixtureOptions = {}, dataDir?: string): Promise<Fixture> {
  const dir = dataDir ?? (await makeDataDir());
  const { clock: given, ...sandboxOptions } = options;
  const clock = given ?? new TestClock();
  const sandbox = await startSandbox({
    logger: pino({ level: 'silent' }),
    totpPeriodSec: 1,
    totpNow: clock.now,
    ...(given === undefined ? {} : { now: given.now }),
    ...sandboxOptions,
    dataDir: dir,
  });
  clocks.set(sandbox.url, clock);
  return {
    sandbox,
    dataDir: dir,
    clock,
    async close() {
      clocks.delete(sandbox.url);
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

export async function currentOtp(cred: SandboxCredential, nowMs = Date.now()): Promise<string> {
  return generateSync({
    secret: await secret(cred.totpSecretFile),
    period: cred.totpPeriodSec,
    epoch: Math.floor(nowMs / 1000),
  });
}

export function timeStep(cred: SandboxCredential, nowMs = Date.now()): number {
  return Math.floor(nowMs / 1000 / cred.totpPeriodSec);
}

/** A 6-digit code that is valid for none of the steps the sandbox accepts (one step either side, at
 * least 10 s either side: see src/sandbox/totp-verifier.ts), with a margin. */
export async function wrongOtp(cred: SandboxCredential, nowMs = Date.now()): Promise<string> {
  const totpSecret = await secret(cred.totpSecretFile);
  const now = Math.floor(nowMs / 1000);
  const p = cred.totpPeriodSec;
  const steps = Math.max(2, Math.ceil(12 / p));
  const valid = new Set(
    Array.from({ length: 2 * steps + 1 }, (_, i) =>
      generateSync({ secret: totpSecret, period: p, epoch: now + (i - steps) * p }),
    ),
  );
  let n = Number(generateSync({ secret: totpSecret, period: p, epoch: now }));
  let code: string;
  do {
    n = (n + 1) % 1_000_000;
    code = String(n).padStart(6, '0');
  } while (valid.has(code));
  return code;
}

/** Last time step the sandbox accepted per sandbox and credential, so the helper never replays one. */
const acceptedSteps = new Map<string, number>();

/** Tell the helper that the sandbox accepted `step` for the credential (when a test sent the code itself). */
export function noteAccepted(sandbox: SandboxHandle, cred: SandboxCredential, step: number): void {
  const key = `${sandbox.url}|${cred.credentialId}`;
  acceptedSteps.set(key, Math.max(step, acceptedSteps.get(key) ?? step));
}

/**
 * The current code, once the credential's time step is later than any the sandbox accepted: the
 * sandbox's test clock is moved on to the next step, or (a sandbox without one) real time waited out.
 */
export async function freshOtp(
  sandbox: SandboxHandle,
  cred: SandboxCredential,
): Promise<{ otp: string; step: number }> {
  const last = acceptedSteps.get(`${sandbox.url}|${cred.credentialId}`);
  const clock = clockOf(sandbox) ?? { now: Date.now, sleep: (ms: number) => sleep(ms) };
  for (;;) {
    const now = clock.now();
    const step = timeStep(cred, now);
    if (last === undefined || step > last) return { otp: await currentOtp(cred, now), step };
    await clock.sleep((last + 1) * cred.totpPeriodSec * 1000 - now);
  }
}

export async function authorize(
  sandbox: SandboxHandle,
  token: string,
  cred: SandboxCredential,
  extra: Record<string, unknown> = {},
  factors: { pin?: string; otp?: string } = {},
): Promise<HttpResult> {
  const fresh = factors.otp === undefined ? await freshOtp(sandbox, cred) : undefined;
  const res = await csc(sandbox, 'credentials/authorize', token, {
    credentialID: cred.credentialId,
    numSignatures: 1,
    authData: [
      { id: 'PIN', value: factors.pin ?? (await secret(cred.pinFile)) },
      { id: 'OTP', value: factors.otp ?? fresh!.otp },
    ],
    ...extra,
  });
  if (res.status === 200 && fresh) noteAccepted(sandbox, cred, fresh.step);
  return res;
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
