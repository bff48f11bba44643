// Tenant approval through the provider in a real browser: headless Debian chromium (playwright-core
// pointed at /usr/bin/chromium) opens the sandbox's approval page from the URL the application builds,
// the approver types PIN and OTP into the form, and the provider's 302 takes the browser to our
// loopback listener, which hands over the code. No shortcut around the page. Skipped, saying why, only
// when /usr/bin/chromium is absent (.ci/run installs it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import {
  buildAuthorizationUrl,
  exchangeCode,
  hashListDigest,
  pkceChallenge,
  startLoopbackRedirect,
} from '../../src/csc';
import { clientSecretOf, freshOtp, pinOf } from './approval-fixture';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { chromiumSkip, launchChromium } from '../helpers/chromium';

const skip = chromiumSkip;

let dataDir: string;
let fx: Fixture;
let browser: Browser | undefined;
before(async () => {
  if (skip) return;
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir);
  browser = await launchChromium();
});
after(async () => {
  if (skip) return;
  await browser?.close();
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function hashes(n: number): Buffer[] {
  return Array.from({ length: n }, () => crypto.createHash('sha256').update(crypto.randomBytes(32)).digest());
}

async function approvalRequest(credentialId: string, numSignatures: number, bound?: Buffer[]) {
  const loop = await startLoopbackRedirect({ timeoutMs: 30_000 });
  const url = buildAuthorizationUrl({
    oauth2Base: fx.sandbox.oauth2Url,
    clientId: fx.credential(credentialId).clientId,
    redirectUri: loop.redirectUri,
    credentialId,
    numSignatures,
    hashes: bound,
    state: loop.state,
    codeChallenge: pkceChallenge(loop.codeVerifier),
  });
  return { loop, url };
}

test(
  'an approver signs in on the provider page in Chromium; a wrong PIN is shown, the right one redirects back',
  { skip },
  async () => {
    const id = 'sakura-eseal-rsa';
    const { loop, url } = await approvalRequest(id, 5);
    const context = await browser!.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      assert.equal(await page.textContent('#credential'), id);
      assert.equal(await page.textContent('#num-signatures'), '5');

      await page.fill('#pin', '99999999');
      await page.fill('#otp', await freshOtp(fx, id));
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/oauth2/authorize')),
        page.click('#approve'),
      ]);
      const error = page.locator('#error');
      assert.equal(await error.getAttribute('data-error'), 'invalid_pin');
      assert.ok(page.url().startsWith(fx.sandbox.oauth2Url), 'still on the provider page');

      await page.fill('#approver', 'hanako.sato@sakura.example');
      await page.fill('#pin', await pinOf(fx, id));
      await page.fill('#otp', await freshOtp(fx, id));
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(loop.redirectUri)),
        page.click('#approve'),
      ]);
      assert.match((await page.textContent('#message')) ?? '', /Approval received/);

      const code = await loop.code;
      const token = await exchangeCode({
        tokenUrl: `${fx.sandbox.oauth2Url}/oauth2/token`,
        clientId: fx.credential(id).clientId,
        clientSecret: await clientSecretOf(fx, id),
        code,
        codeVerifier: loop.codeVerifier,
        redirectUri: loop.redirectUri,
      });
      assert.equal(token.numSignatures, 5);
      assert.equal(token.approvedBy, 'hanako.sato@sakura.example', 'the page reports who approved');
      const client = await fx.clientFor(id);
      const credential = await client.credentialInfo(id);
      const sigs = await client.signHash({ credential, hashes: hashes(3), credentialToken: token.token });
      assert.equal(sigs.length, 3);
    } finally {
      await context.close();
      await loop.close();
    }
  },
);

test(
  'under SCAL2 the page in Chromium shows the hash count and the digest of the hash list',
  { skip },
  async () => {
    const id = 'fuji-eseal-ec-scal2';
    const bound = hashes(4);
    const { loop, url } = await approvalRequest(id, 4, bound);
    const context = await browser!.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      assert.equal(await page.textContent('#hash-count'), '4');
      assert.equal(await page.textContent('#hash-list-digest'), hashListDigest(bound));
      await page.fill('#pin', await pinOf(fx, id));
      await page.fill('#otp', await freshOtp(fx, id));
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(loop.redirectUri)),
        page.click('#approve'),
      ]);
      const token = await exchangeCode({
        tokenUrl: `${fx.sandbox.oauth2Url}/oauth2/token`,
        clientId: fx.credential(id).clientId,
        clientSecret: await clientSecretOf(fx, id),
        code: await loop.code,
        codeVerifier: loop.codeVerifier,
        redirectUri: loop.redirectUri,
      });
      const client = await fx.clientFor(id);
      const credential = await client.credentialInfo(id);
      assert.equal(
        (await client.signHash({ credential, hashes: bound, credentialToken: token.token })).length,
        4,
      );
    } finally {
      await context.close();
      await loop.close();
    }
  },
);
