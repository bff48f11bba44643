// Service authorisation and protocol hygiene: the OAuth2 client-credentials token endpoint, Bearer
// checks on CSC methods, and the CSC error bodies for unknown paths and malformed requests. The
// sandbox runs on a ManualClock: a token expires when the test moves the clock, never because the
// machine was slow.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  csc,
  errorOf,
  getToken,
  ManualClock,
  secret,
  startFixture,
  tokenRequest,
  type Fixture,
} from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

const TOKEN_LIFETIME_MS = 300;
const clock = new ManualClock();
let fx: Fixture;
let sakuraSecret: string;

before(async () => {
  fx = await startFixture({ tokenLifetimeSec: TOKEN_LIFETIME_MS / 1000, clock });
  sakuraSecret = await secret(
    fx.sandbox.credentials.find((c) => c.clientId === 'sakura-app')!.clientSecretFile,
  );
});
after(async () => fx.close());

test(
  'info answers POST and GET without a token, naming basic and oauth2client and the OAuth2 base URL',
  TIMEOUT,
  async () => {
    const post = await csc(fx.sandbox, 'info', undefined, {});
    assert.equal(post.status, 200);
    assert.deepEqual(post.body.authType, ['basic', 'oauth2client']);
    assert.equal(post.body.oauth2, fx.sandbox.oauth2Url);
    assert.ok((post.body.methods as string[]).includes('signatures/signHash'));
    const get = await fetch(`${fx.sandbox.url}/info`);
    assert.equal(get.status, 200);
    assert.equal(((await get.json()) as { region: string }).region, 'JP');
  },
);

test('token with a wrong client secret is 401 invalid_client', TIMEOUT, async () => {
  const res = await tokenRequest(fx.sandbox, {
    grant_type: 'client_credentials',
    client_id: 'sakura-app',
    client_secret: `${sakuraSecret}x`,
  });
  assert.equal(res.status, 401);
  assert.equal(res.body.error, 'invalid_client');
  assert.equal(typeof res.body.error_description, 'string');
  assert.ok(!JSON.stringify(res.body).includes(sakuraSecret));
});

test(
  'token for an unknown client is 401 invalid_client; without client_id it is 400 invalid_request',
  TIMEOUT,
  async () => {
    const unknown = await tokenRequest(fx.sandbox, {
      grant_type: 'client_credentials',
      client_id: 'nobody',
      client_secret: 'x',
    });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error, 'invalid_client');
    const missing = await tokenRequest(fx.sandbox, { grant_type: 'client_credentials' });
    assert.deepEqual(errorOf(missing), {
      status: 400,
      error: 'invalid_request',
      description: 'Missing parameter client_id',
    });
  },
);

test(
  'token via HTTP Basic and via a JSON body both return a Bearer token with expires_in',
  TIMEOUT,
  async () => {
    const basic = Buffer.from(`sakura-app:${sakuraSecret}`).toString('base64');
    const viaBasic = await tokenRequest(
      fx.sandbox,
      { grant_type: 'client_credentials' },
      { Authorization: `Basic ${basic}` },
    );
    assert.equal(viaBasic.status, 200);
    assert.equal(viaBasic.body.token_type, 'Bearer');
    assert.equal(viaBasic.body.expires_in, 1);
    assert.match(String(viaBasic.body.access_token), /^[A-Za-z0-9_-]{40,}$/);

    const viaJson = await fetch(`${fx.sandbox.oauth2Url}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: 'sakura-app',
        client_secret: sakuraSecret,
      }),
    });
    assert.equal(viaJson.status, 200);
  },
);

test('an unsupported grant_type is refused with 400', TIMEOUT, async () => {
  const res = await tokenRequest(fx.sandbox, {
    grant_type: 'password',
    client_id: 'sakura-app',
    client_secret: sakuraSecret,
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'unsupported_grant_type');
});

test(
  'CSC methods refuse a missing, unknown or expired Bearer token with 401 and a CSC body',
  TIMEOUT,
  async () => {
    const missing = await csc(fx.sandbox, 'credentials/list', undefined, {});
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error, 'invalid_request');
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);

    const bogus = await csc(fx.sandbox, 'credentials/list', 'not-a-token', {});
    assert.equal(bogus.status, 401);
    assert.equal(bogus.body.error, 'invalid_token');

    const token = await getToken(fx.sandbox, 'sakura-app');
    assert.equal((await csc(fx.sandbox, 'credentials/list', token, {})).status, 200);
    clock.advance(TOKEN_LIFETIME_MS - 1); // the last millisecond of its life
    assert.equal((await csc(fx.sandbox, 'credentials/list', token, {})).status, 200);
    clock.advance(1);
    const expired = await csc(fx.sandbox, 'credentials/list', token, {});
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error, 'expired_token');
  },
);

test('an unknown path is 404 with a CSC error body', TIMEOUT, async () => {
  const res = await csc(fx.sandbox, 'signatures/signDoc', undefined, {});
  assert.equal(res.status, 404);
  assert.equal(res.body.error, 'invalid_request');
  assert.match(String(res.body.error_description), /signatures\/signDoc/);
});

test(
  'malformed JSON and a missing parameter are 400 invalid_request naming the problem',
  TIMEOUT,
  async () => {
    const token = await getToken(fx.sandbox, 'sakura-app');
    const malformed = await fetch(`${fx.sandbox.url}/credentials/info`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: '{"credentialID": ',
    });
    assert.equal(malformed.status, 400);
    assert.deepEqual(await malformed.json(), {
      error: 'invalid_request',
      error_description: 'Malformed JSON request body',
    });

    const missing = await csc(fx.sandbox, 'credentials/info', token, {});
    assert.deepEqual(errorOf(missing), {
      status: 400,
      error: 'invalid_request',
      description: 'Missing (or invalid type) string parameter credentialID',
    });
  },
);

test('stats count calls and errors', TIMEOUT, async () => {
  fx.sandbox.resetStats();
  await csc(fx.sandbox, 'info', undefined, {});
  await tokenRequest(fx.sandbox, {
    grant_type: 'client_credentials',
    client_id: 'sakura-app',
    client_secret: 'wrong',
  });
  const s = fx.sandbox.stats();
  assert.equal(s.info, 1);
  assert.equal(s.token, 1);
  assert.equal(s.errors, 1);
  assert.equal(s.signatures, 0);
});
