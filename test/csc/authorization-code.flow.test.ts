// Tenant approval through the provider (custody model 2) over plain HTTP, no browser: the approver's
// visit to the sandbox's oauth2/authorize page (GET, POST with PIN + TOTP, the redirect followed to our
// loopback listener), the code exchanged for a credential-scope token, and signatures/signHash with
// that token as the only Bearer and no SAD. Then every way the flow must refuse: a spent, expired or
// revoked token, a token for another credential, a wrong redirect_uri, a reused code, wrong factors,
// a redirect_uri that is not loopback, a request above multisign, a denial; and PKCE (RFC 7636 S256):
// an authorization request without a code_challenge, or with "plain", and a token request with a wrong
// or missing code_verifier.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buildAuthorizationUrl,
  CscError,
  exchangeCode,
  hashListDigest,
  pkceChallenge,
  startLoopbackRedirect,
  type CredentialToken,
} from '../../src/csc';
import {
  approveOverHttp,
  clientSecretOf,
  followRedirect,
  freshOtp,
  getPage,
  pageError,
  pageField,
  pinOf,
  submitPage,
  transactionOf,
} from './approval-fixture';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const RSA = 'sakura-eseal-rsa';
const EC = 'fuji-eseal-ec';
const EC_SCAL2 = 'fuji-eseal-ec-scal2';

let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir);
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function messages(n: number): { msg: Buffer; hash: Buffer }[] {
  return Array.from({ length: n }, () => {
    const msg = crypto.randomBytes(48);
    return { msg, hash: crypto.createHash('sha256').update(msg).digest() };
  });
}

/** Start a loopback listener and the URL of the provider page for this approval. */
async function request(f: Fixture, credentialId: string, numSignatures: number, hashes?: Buffer[]) {
  const loop = await startLoopbackRedirect({ timeoutMs: 20_000 });
  const url = buildAuthorizationUrl({
    oauth2Base: f.sandbox.oauth2Url,
    clientId: f.credential(credentialId).clientId,
    redirectUri: loop.redirectUri,
    credentialId,
    numSignatures,
    hashes,
    state: loop.state,
    codeChallenge: pkceChallenge(loop.codeVerifier),
  });
  return { loop, url };
}

async function exchange(
  f: Fixture,
  credentialId: string,
  code: string,
  redirectUri: string,
  codeVerifier: string,
): Promise<CredentialToken> {
  return exchangeCode({
    tokenUrl: `${f.sandbox.oauth2Url}/oauth2/token`,
    clientId: f.credential(credentialId).clientId,
    clientSecret: await clientSecretOf(f, credentialId),
    code,
    codeVerifier,
    redirectUri,
    credentialId,
  });
}

/** The whole approval over HTTP: the credential-scope token and what signing needs. */
async function approved(f: Fixture, credentialId: string, numSignatures: number, hashes?: Buffer[]) {
  const { loop, url } = await request(f, credentialId, numSignatures, hashes);
  await approveOverHttp(f, credentialId, url);
  const token = await exchange(f, credentialId, await loop.code, loop.redirectUri, loop.codeVerifier);
  const client = await f.clientFor(credentialId);
  const credential = await client.credentialInfo(credentialId);
  return { token, client, credential };
}

async function refusal(p: Promise<unknown>): Promise<CscError> {
  const err = await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CscError, String(err));
  return err;
}

test(
  'an approval on the provider page buys a credential-scope token that signs 3 hashes with no SAD',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, RSA, 3);
    const page = await getPage(url);
    assert.equal(page.status, 200);
    assert.equal(pageField(page.html, 'credential'), RSA);
    assert.equal(pageField(page.html, 'num-signatures'), '3');
    assert.equal(pageField(page.html, 'hash-list-digest'), undefined, 'SCAL1: no hash list to show');

    const answer = await submitPage(fx, {
      transaction: transactionOf(page.html),
      pin: await pinOf(fx, RSA),
      otp: await freshOtp(fx, RSA),
    });
    assert.equal(answer.status, 302);
    const back = new URL(answer.location ?? '');
    assert.equal(`${back.origin}${back.pathname}`, loop.redirectUri);
    assert.equal(back.searchParams.get('state'), loop.state);
    const landing = await followRedirect(answer.location!);
    assert.equal(landing.status, 200);
    assert.match(landing.html, /Approval received/);

    const token = await exchange(fx, RSA, await loop.code, loop.redirectUri, loop.codeVerifier);
    assert.equal(token.numSignatures, 3);
    assert.ok(token.expiresAt > Date.now() + 3000_000, 'the sandbox grants an hour, like a SAD');

    const client = await fx.clientFor(RSA);
    const credential = await client.credentialInfo(RSA);
    const serviceTokensBefore = client.calls.token;
    const items = messages(3);
    const sigs = await client.signHash({
      credential,
      hashes: items.map((i) => i.hash),
      credentialToken: token.token,
    });
    assert.equal(
      client.calls.token,
      serviceTokensBefore,
      'signHash with a credential token needs no service token',
    );
    const publicKey = new crypto.X509Certificate(credential.certificates[0]!).publicKey;
    sigs.forEach((sig, i) => assert.ok(crypto.verify('sha256', items[i]!.msg, publicKey, sig)));

    // Spent: the token authorised three signatures and all three are used.
    const spent = await refusal(
      client.signHash({ credential, hashes: messages(1).map((i) => i.hash), credentialToken: token.token }),
    );
    assert.equal(spent.status, 401);
    assert.equal(spent.error, 'invalid_token');
    assert.match(spent.errorDescription ?? '', /All 3 signatures/);
  },
);

test(
  'a token never signs more hashes than it has left, and a refused call spends nothing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { token, client, credential } = await approved(fx, EC, 2);
    const tooMany = await refusal(
      client.signHash({ credential, hashes: messages(3).map((i) => i.hash), credentialToken: token.token }),
    );
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.error, 'invalid_request');
    const sigs = await client.signHash({
      credential,
      hashes: messages(2).map((i) => i.hash),
      credentialToken: token.token,
    });
    assert.equal(sigs.length, 2);
  },
);

test(
  'the token also works as the SAD beside a service token (CSC backward compatibility), never both at once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { token, client, credential } = await approved(fx, RSA, 2);
    const asSad = await client.signHash({
      credential,
      hashes: messages(1).map((i) => i.hash),
      sad: token.token,
    });
    assert.equal(asSad.length, 1);

    const both = await fetch(`${fx.sandbox.url}/signatures/signHash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
      body: JSON.stringify({
        credentialID: RSA,
        SAD: token.token,
        hashes: messages(1).map((i) => i.hash.toString('base64')),
        signAlgo: credential.signAlgoOid,
        hashAlgorithmOID: '2.16.840.1.101.3.4.2.1',
      }),
    });
    assert.equal(both.status, 400);
    assert.equal(((await both.json()) as { error: string }).error, 'invalid_request');
  },
);

test(
  'an expired credential-scope token is refused with 401 expired_token',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const shortDir = dataDir;
    const short = await startFixture(shortDir, { sadLifetimeSec: 0.5 });
    try {
      const { token, client, credential } = await approved(short, RSA, 1);
      await sleep(700);
      const expired = await refusal(
        client.signHash({ credential, hashes: messages(1).map((i) => i.hash), credentialToken: token.token }),
      );
      assert.equal(expired.status, 401);
      assert.equal(expired.error, 'expired_token');
    } finally {
      await short.close();
    }
  },
);

test(
  'a token approved for one credential is refused for another of the same tenant',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { token, client } = await approved(fx, EC, 1);
    const other = await client.credentialInfo(EC_SCAL2);
    const refused = await refusal(
      client.signHash({
        credential: other,
        hashes: messages(1).map((i) => i.hash),
        credentialToken: token.token,
      }),
    );
    assert.equal(refused.status, 400);
    assert.equal(refused.error, 'invalid_request');
    assert.match(refused.errorDescription ?? '', /credentialID/);
  },
);

test(
  'the token endpoint refuses a wrong redirect_uri and a reused code, which revokes the token',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, RSA, 1);
    await approveOverHttp(fx, RSA, url);
    const code = await loop.code;

    const wrongUri = await refusal(
      exchange(fx, RSA, code, 'http://127.0.0.1:9/elsewhere', loop.codeVerifier),
    );
    assert.equal(wrongUri.status, 400);
    assert.equal(wrongUri.error, 'invalid_grant');

    const token = await exchange(fx, RSA, code, loop.redirectUri, loop.codeVerifier);
    const reused = await refusal(exchange(fx, RSA, code, loop.redirectUri, loop.codeVerifier));
    assert.equal(reused.status, 400);
    assert.equal(reused.error, 'invalid_grant');

    // RFC 6749 4.1.2: a code presented twice may have been stolen; what it bought no longer works.
    const client = await fx.clientFor(RSA);
    const credential = await client.credentialInfo(RSA);
    const revoked = await refusal(
      client.signHash({ credential, hashes: messages(1).map((i) => i.hash), credentialToken: token.token }),
    );
    assert.equal(revoked.status, 401);
    assert.equal(revoked.error, 'invalid_token');

    const otherClient = await refusal(
      exchangeCode({
        tokenUrl: `${fx.sandbox.oauth2Url}/oauth2/token`,
        clientId: fx.credential(EC).clientId,
        clientSecret: await clientSecretOf(fx, EC),
        code,
        codeVerifier: loop.codeVerifier,
        redirectUri: loop.redirectUri,
      }),
    );
    assert.equal(otherClient.error, 'invalid_grant');
  },
);

test(
  'wrong factors show the page again with the CSC error; a replayed OTP is refused; then it goes through',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, EC, 1);
    const page = await getPage(url);
    const transaction = transactionOf(page.html);
    const pin = await pinOf(fx, EC);

    const wrongPin = await submitPage(fx, { transaction, pin: `${pin}9`, otp: await freshOtp(fx, EC) });
    assert.equal(wrongPin.status, 400);
    assert.equal(wrongPin.location, undefined);
    assert.equal(pageError(wrongPin.html), 'invalid_pin');

    const wrongOtp = await submitPage(fx, { transaction, pin, otp: '000000' });
    assert.equal(pageError(wrongOtp.html), 'invalid_otp');

    const otp = await freshOtp(fx, EC);
    const ok = await submitPage(fx, { transaction, pin, otp });
    assert.equal(ok.status, 302);
    await followRedirect(ok.location!);
    assert.ok(await loop.code);

    // The same code again, on a new request: the time step was spent (RFC 6238 section 5.2).
    const again = await request(fx, EC, 1);
    const replay = await submitPage(fx, {
      transaction: transactionOf((await getPage(again.url)).html),
      pin,
      otp,
    });
    assert.equal(pageError(replay.html), 'invalid_otp');
    assert.match(replay.html, /already used/);
    await again.loop.close();
  },
);

test(
  'repeated failures on the page lock the credential, even against the right factors',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const locking = await startFixture(dataDir, { lockAfterFailures: 2, lockSeconds: 60 });
    try {
      const { loop, url } = await request(locking, RSA, 1);
      const transaction = transactionOf((await getPage(url)).html);
      for (let i = 0; i < 2; i++) {
        const failed = await submitPage(locking, {
          transaction,
          pin: '000000x',
          otp: await freshOtp(locking, RSA),
        });
        assert.equal(pageError(failed.html), 'invalid_pin');
      }
      const locked = await submitPage(locking, {
        transaction,
        pin: await pinOf(locking, RSA),
        otp: await freshOtp(locking, RSA),
      });
      assert.equal(locked.location, undefined);
      assert.match(locked.html, /locked/);
      await loop.close();
    } finally {
      await locking.close();
    }
  },
);

test(
  'under SCAL2 the page shows the count and digest of the hash list, and the token signs only those',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const items = messages(2);
    const hashes = items.map((i) => i.hash);
    const { loop, url } = await request(fx, EC_SCAL2, 2, hashes);
    const page = await getPage(url);
    assert.equal(pageField(page.html, 'hash-count'), '2');
    assert.equal(pageField(page.html, 'hash-list-digest'), hashListDigest(hashes));
    const answer = await submitPage(fx, {
      transaction: transactionOf(page.html),
      pin: await pinOf(fx, EC_SCAL2),
      otp: await freshOtp(fx, EC_SCAL2),
    });
    await followRedirect(answer.location!);
    const token = await exchange(fx, EC_SCAL2, await loop.code, loop.redirectUri, loop.codeVerifier);
    assert.equal(token.numSignatures, 2);

    const client = await fx.clientFor(EC_SCAL2);
    const credential = await client.credentialInfo(EC_SCAL2);
    const stranger = await refusal(
      client.signHash({
        credential,
        hashes: [hashes[0]!, messages(1)[0]!.hash],
        credentialToken: token.token,
      }),
    );
    assert.equal(stranger.status, 400);
    assert.match(stranger.errorDescription ?? '', /Hash is not authorized/);
    const sigs = await client.signHash({ credential, hashes, credentialToken: token.token });
    assert.equal(sigs.length, 2);
  },
);

test(
  'a SCAL2 request without hashes, or above multisign, comes back to the redirect_uri as an error',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const noHashes = await request(fx, EC_SCAL2, 1);
    const a = await getPage(noHashes.url);
    assert.equal(a.status, 302);
    await followRedirect(a.location!);
    const errA = await refusal(noHashes.loop.code);
    assert.equal(errA.error, 'invalid_authorization_details');

    const tooMany = await request(fx, RSA, 501);
    const b = await getPage(tooMany.url);
    assert.equal(new URL(b.location!).searchParams.get('state'), tooMany.loop.state);
    await followRedirect(b.location!);
    const errB = await refusal(tooMany.loop.code);
    assert.equal(errB.error, 'invalid_authorization_details');
    assert.match(errB.errorDescription ?? '', /multisign/);
  },
);

test(
  'a redirect_uri that is not loopback, or an unknown client, gets an error page and no redirect',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const url = new URL(
      buildAuthorizationUrl({
        oauth2Base: fx.sandbox.oauth2Url,
        clientId: 'sakura-app',
        redirectUri: 'https://attacker.example/cb',
        credentialId: RSA,
        numSignatures: 1,
        state: 'x',
        codeChallenge: pkceChallenge('v'.repeat(43)),
      }),
    );
    const external = await getPage(url.toString());
    assert.equal(external.status, 400);
    assert.equal(external.location, undefined);
    assert.match(external.html, /loopback/);

    url.searchParams.set('redirect_uri', 'http://127.0.0.1:9/cb');
    url.searchParams.set('client_id', 'nobody');
    const unknown = await getPage(url.toString());
    assert.equal(unknown.status, 400);
    assert.equal(unknown.location, undefined);
  },
);

test(
  'a denial comes back as access_denied; the listener ignores answers without its state',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, RSA, 1);
    const forged = await followRedirect(`${loop.redirectUri}?code=forged&state=wrong`);
    assert.equal(forged.status, 400);
    const page = await getPage(url);
    const denied = await submitPage(fx, { transaction: transactionOf(page.html), decision: 'deny' });
    assert.equal(denied.status, 302);
    await followRedirect(denied.location!);
    const err = await refusal(loop.code);
    assert.equal(err.error, 'access_denied');
  },
);

test('a service token without a SAD is still refused by signHash', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await fx.clientFor(RSA);
  const credential = await client.credentialInfo(RSA);
  const refused = await refusal(
    client.signHash({
      credential,
      hashes: messages(1).map((i) => i.hash),
      sad: undefined as unknown as string,
    }),
  );
  assert.equal(refused.status, 400);
  assert.match(refused.errorDescription ?? '', /SAD/);
});

test(
  'PKCE: the URL carries the S256 challenge of the listener verifier, and the right verifier buys the token',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, RSA, 1);
    const q = new URL(url).searchParams;
    assert.equal(q.get('code_challenge_method'), 'S256');
    // RFC 7636 appendix B: BASE64URL(SHA256(verifier)), computed here independently of the client.
    const expected = crypto.createHash('sha256').update(loop.codeVerifier).digest('base64url');
    assert.equal(q.get('code_challenge'), expected);
    assert.match(loop.codeVerifier, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!url.includes(loop.codeVerifier), 'the verifier never travels in the authorization request');
    // RFC 7636 appendix B's own example pair.
    assert.equal(
      pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
    await approveOverHttp(fx, RSA, url);
    const token = await exchange(fx, RSA, await loop.code, loop.redirectUri, loop.codeVerifier);
    assert.equal(token.numSignatures, 1);
  },
);

test(
  'PKCE: a wrong or missing code_verifier is refused with invalid_grant, and does not use the code up',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { loop, url } = await request(fx, RSA, 1);
    await approveOverHttp(fx, RSA, url);
    const code = await loop.code;

    // Well formed, but another verifier's: the challenge does not match.
    const otherVerifier = crypto.randomBytes(32).toString('base64url');
    const wrong = await refusal(exchange(fx, RSA, code, loop.redirectUri, otherVerifier));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.error, 'invalid_grant');
    assert.match(wrong.errorDescription ?? '', /code_verifier does not match/);

    // No code_verifier at all: a token request sent by hand, as a client without PKCE would.
    const res = await fetch(`${fx.sandbox.oauth2Url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: loop.redirectUri,
        client_id: fx.credential(RSA).clientId,
        client_secret: await clientSecretOf(fx, RSA),
      }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; error_description: string; access_token?: string };
    assert.equal(body.error, 'invalid_grant');
    assert.match(body.error_description, /Missing parameter code_verifier/);
    assert.equal(body.access_token, undefined);

    // The rightful client, holding the verifier, still redeems the code.
    const token = await exchange(fx, RSA, code, loop.redirectUri, loop.codeVerifier);
    assert.equal(token.numSignatures, 1);
  },
);

test(
  'PKCE: an authorization request without a code_challenge, or with method plain, comes back as invalid_request',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const cases: Array<[string, (u: URL) => void, RegExp]> = [
      ['missing', (u) => u.searchParams.delete('code_challenge'), /Missing parameter code_challenge/],
      ['plain', (u) => u.searchParams.set('code_challenge_method', 'plain'), /not supported, only S256/],
      ['no method', (u) => u.searchParams.delete('code_challenge_method'), /"plain" not supported/],
    ];
    for (const [name, edit, description] of cases) {
      const { loop, url } = await request(fx, RSA, 1);
      const u = new URL(url);
      edit(u);
      const page = await getPage(u.toString());
      assert.equal(page.status, 302, name);
      assert.equal(new URL(page.location!).searchParams.get('state'), loop.state, name);
      await followRedirect(page.location!);
      const err = await refusal(loop.code);
      assert.equal(err.error, 'invalid_request', name);
      assert.match(err.errorDescription ?? '', description, name);
    }
  },
);
