// Test helpers for tenant approval through the provider's page (authorization code flow, scope
// "credential"): the approver's factors read from the sandbox's secret files, a fresh TOTP code per
// call (the sandbox's TOTP clock is moved on a step first, so no code is ever a replay), and the page
// driven over plain HTTP the way a browser would: GET the page, POST its form, read the redirect.
import { readFile } from 'node:fs/promises';
import { totpCode } from '../../src/csc';
import type { Fixture } from './sandbox-fixture';

export interface PageAnswer {
  status: number;
  /** The Location of a 302. */
  location?: string;
  html: string;
}

export async function readSecret(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

export async function clientSecretOf(fx: Fixture, credentialId: string): Promise<string> {
  return readSecret(fx.credential(credentialId).clientSecretFile);
}

export async function pinOf(fx: Fixture, credentialId: string): Promise<string> {
  return readSecret(fx.credential(credentialId).pinFile);
}

/** A TOTP code of a time step the sandbox has not seen yet for this credential. */
export async function freshOtp(fx: Fixture, credentialId: string): Promise<string> {
  const c = fx.credential(credentialId);
  await fx.clock.sleep(c.totpPeriodSec * 1000);
  return totpCode(await readSecret(c.totpSecretFile), { period: c.totpPeriodSec, now: fx.clock.now() });
}

export async function getPage(url: string): Promise<PageAnswer> {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location') ?? undefined, html: await res.text() };
}

/** The hidden transaction id of the page's form. */
export function transactionOf(html: string): string {
  const m = /name="transaction" value="([^"]+)"/.exec(html);
  if (!m?.[1]) throw new Error('the page has no approval form');
  return m[1];
}

/** The `data-error` code the page shows, if any. */
export function pageError(html: string): string | undefined {
  return /id="error"[^>]*data-error="([^"]+)"/.exec(html)?.[1];
}

/** Text of the element with `id` (one-line values only). */
export function pageField(html: string, id: string): string | undefined {
  return new RegExp(`id="${id}">([^<]*)<`).exec(html)?.[1];
}

export async function submitPage(
  fx: Fixture,
  form: { transaction: string; pin?: string; otp?: string; decision?: 'approve' | 'deny' },
): Promise<PageAnswer> {
  const body = new URLSearchParams({ transaction: form.transaction, decision: form.decision ?? 'approve' });
  if (form.pin !== undefined) body.set('PIN', form.pin);
  if (form.otp !== undefined) body.set('OTP', form.otp);
  const res = await fetch(`${fx.sandbox.oauth2Url}/oauth2/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    redirect: 'manual',
  });
  return { status: res.status, location: res.headers.get('location') ?? undefined, html: await res.text() };
}

/** The approver's whole visit over HTTP: page, right PIN and OTP, and the redirect back followed. */
export async function approveOverHttp(
  fx: Fixture,
  credentialId: string,
  authorizationUrl: string,
): Promise<void> {
  const page = await getPage(authorizationUrl);
  if (page.status !== 200)
    throw new Error(`approval page answered ${page.status}: ${page.location ?? page.html}`);
  const answer = await submitPage(fx, {
    transaction: transactionOf(page.html),
    pin: await pinOf(fx, credentialId),
    otp: await freshOtp(fx, credentialId),
  });
  if (answer.status !== 302 || answer.location === undefined) {
    throw new Error(
      `approval was not redirected (${answer.status}, ${pageError(answer.html) ?? 'no error'})`,
    );
  }
  await followRedirect(answer.location);
}

/** The browser's request to the loopback listener. */
export async function followRedirect(location: string): Promise<PageAnswer> {
  return getPage(location);
}
