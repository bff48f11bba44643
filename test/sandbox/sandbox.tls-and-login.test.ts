// The sandbox's other ways in and its HTTPS mode, spoken to as any client would: CSC auth/login with
// HTTP Basic, each tenant's static API token as a Bearer token, /info advertising both auth types, the
// secrets provisioned into an old dataDir on load, and HTTPS under a server certificate from the
// sandbox's own root (persisted, reused on restart, refused by a client that does not trust the root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat, unlink } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { credential, csc, errorOf, makeDataDir, secret, startFixture } from './sandbox-fixture';
import type { SandboxHandle } from '../../src/sandbox';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

async function login(sandbox: SandboxHandle, authorization: string | undefined, body: unknown = {}) {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (authorization !== undefined) headers.Authorization = authorization;
  const res = await fetch(`${sandbox.url}/auth/login`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** One JSON POST over HTTPS trusting `ca` (undefined: the platform's roots only). */
function httpsPost(url: string, ca: string | undefined, body: unknown = {}) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' }, ...(ca ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test(
  '/info lists basic and oauth2client, and auth/login among the methods',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fx = await startFixture();
    try {
      const res = await csc(fx.sandbox, 'info', undefined, {});
      assert.deepEqual(res.body.authType, ['basic', 'oauth2client']);
      assert.ok((res.body.methods as string[]).includes('auth/login'));
    } finally {
      await fx.close();
    }
  },
);

test(
  'auth/login with the tenant login gives a service token for that tenant only',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fx = await startFixture();
    try {
      const sakura = credential(fx.sandbox, 'sakura-eseal-rsa');
      const user = await secret(sakura.loginUserFile);
      assert.equal(user, 'sakura-sealer');
      const res = await login(fx.sandbox, basic(user, await secret(sakura.loginPasswordFile)), {
        rememberMe: false,
      });
      assert.equal(res.status, 200);
      assert.equal(typeof res.body.access_token, 'string');
      assert.equal(res.body.expires_in, 3600);
      assert.equal(res.body.refresh_token, undefined);
      const token = res.body.access_token as string;
      const list = await csc(fx.sandbox, 'credentials/list', token, {});
      assert.deepEqual(list.body.credentialIDs, ['sakura-eseal-rsa', 'sakura-eseal-implicit']);
      const other = await csc(fx.sandbox, 'credentials/info', token, { credentialID: 'fuji-eseal-ec' });
      assert.equal(errorOf(other).error, 'invalid_request');
      assert.equal(fx.sandbox.stats().token, 1);
    } finally {
      await fx.close();
    }
  },
);

test(
  'auth/login refuses a wrong password, an unknown user, no credentials and refresh tokens',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fx = await startFixture();
    try {
      const fuji = credential(fx.sandbox, 'fuji-eseal-ec');
      const user = await secret(fuji.loginUserFile);
      for (const auth of [
        basic(user, 'wrong'),
        basic('nobody', await secret(fuji.loginPasswordFile)),
        undefined,
      ]) {
        const res = await login(fx.sandbox, auth);
        assert.equal(res.status, 401);
        assert.equal(res.body.error, 'access_denied');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="csc"/);
      }
      // A Bearer header is not how one logs in.
      assert.equal((await login(fx.sandbox, 'Bearer abc')).status, 400);
      const withRefresh = await login(fx.sandbox, basic(user, await secret(fuji.loginPasswordFile)), {
        refresh_token: 'x',
      });
      assert.equal(withRefresh.status, 400);
      assert.equal(withRefresh.body.error_description, 'Invalid parameter refresh_token');
    } finally {
      await fx.close();
    }
  },
);

test(
  "a tenant's static API token is accepted as a Bearer token, bound to its tenant, across restarts",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      for (let run = 0; run < 2; run++) {
        const fx = await startFixture({}, dataDir);
        try {
          const fuji = credential(fx.sandbox, 'fuji-eseal-ec');
          const token = await secret(fuji.apiTokenFile);
          const list = await csc(fx.sandbox, 'credentials/list', token, {});
          assert.deepEqual(list.body.credentialIDs, ['fuji-eseal-ec', 'fuji-eseal-ec-scal2']);
          const other = await csc(fx.sandbox, 'credentials/info', token, {
            credentialID: 'sakura-eseal-rsa',
          });
          assert.equal(errorOf(other).error, 'invalid_request');
          const wrong = await csc(fx.sandbox, 'credentials/list', `${token}x`, {});
          assert.equal(errorOf(wrong).status, 401);
          assert.equal(errorOf(wrong).error, 'invalid_token');
          assert.equal(fx.sandbox.stats().token, 0);
        } finally {
          await fx.close();
        }
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);

test(
  'an old dataDir without login or API-token secrets gets them on load; other secrets are kept',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      const first = await startFixture({}, dataDir);
      const sakura = credential(first.sandbox, 'sakura-eseal-rsa');
      const clientSecret = await secret(sakura.clientSecretFile);
      const oldToken = await secret(sakura.apiTokenFile);
      await first.close();
      for (const f of [sakura.loginUserFile, sakura.loginPasswordFile, sakura.apiTokenFile]) await unlink(f);

      const again = await startFixture({}, dataDir);
      try {
        for (const f of [sakura.loginUserFile, sakura.loginPasswordFile, sakura.apiTokenFile]) {
          assert.equal((await stat(f)).mode & 0o777, 0o600, f);
        }
        assert.equal((await stat(path.dirname(sakura.apiTokenFile))).mode & 0o777, 0o700);
        assert.equal(await secret(sakura.clientSecretFile), clientSecret);
        const newToken = await secret(sakura.apiTokenFile);
        assert.notEqual(newToken, oldToken);
        assert.equal((await csc(again.sandbox, 'credentials/list', oldToken, {})).status, 401);
        assert.equal((await csc(again.sandbox, 'credentials/list', newToken, {})).status, 200);
        const res = await login(
          again.sandbox,
          basic(await secret(sakura.loginUserFile), await secret(sakura.loginPasswordFile)),
        );
        assert.equal(res.status, 200);
      } finally {
        await again.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);

test(
  'HTTPS: a server certificate from the sandbox root, naming 127.0.0.1 and localhost, kept across restarts',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      const first = await startFixture({ tls: true }, dataDir);
      let stored: string;
      try {
        const { sandbox } = first;
        assert.match(sandbox.url, /^https:\/\/127\.0\.0\.1:\d+\/csc\/v2$/);
        assert.match(sandbox.oauth2Url, /^https:\/\//);
        assert.equal(sandbox.tlsServerPath, path.join(dataDir, 'tls', 'server.pem'));
        assert.equal((await stat(sandbox.tlsServerPath!)).mode & 0o777, 0o600);
        stored = await readFile(sandbox.tlsServerPath!, 'utf8');
        const cert = new X509Certificate(stored);
        const root = new X509Certificate(sandbox.rootCertPem);
        assert.ok(cert.checkIssued(root) && cert.verify(root.publicKey), 'issued by the sandbox root');
        assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
        assert.equal(cert.checkHost('localhost'), 'localhost');
        assert.equal(cert.ca, false);

        const info = await httpsPost(`${sandbox.url}/info`, sandbox.rootCertPem);
        assert.equal(info.status, 200);
        assert.equal(info.body.oauth2, sandbox.oauth2Url);
        const viaName = await httpsPost(
          `${sandbox.url.replace('127.0.0.1', 'localhost')}/info`,
          sandbox.rootCertPem,
        );
        assert.equal(viaName.status, 200);
        // A client trusting only the platform's roots (node:https or fetch) refuses the certificate.
        await assert.rejects(httpsPost(`${sandbox.url}/info`, undefined), (err: NodeJS.ErrnoException) => {
          assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
          return true;
        });
        await assert.rejects(fetch(`${sandbox.url}/info`), /fetch failed/);
      } finally {
        await first.close();
      }
      const second = await startFixture({ tls: true }, dataDir);
      try {
        assert.equal(await readFile(second.sandbox.tlsServerPath!, 'utf8'), stored);
        assert.equal((await httpsPost(`${second.sandbox.url}/info`, second.sandbox.rootCertPem)).status, 200);
      } finally {
        await second.close();
      }
      // Without tls the same dataDir still serves plain HTTP.
      const plain = await startFixture({}, dataDir);
      try {
        assert.match(plain.sandbox.url, /^http:\/\//);
        assert.equal(plain.sandbox.tlsServerPath, undefined);
        assert.equal((await csc(plain.sandbox, 'info', undefined, {})).status, 200);
      } finally {
        await plain.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);

test(
  'HTTPS: a publicUrl host missing from the stored certificate gets a new certificate naming it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      const first = await startFixture({ tls: true }, dataDir);
      const before = await readFile(first.sandbox.tlsServerPath!, 'utf8');
      await first.close();
      const second = await startFixture({ tls: true, publicUrl: 'https://sandbox.internal:8700' }, dataDir);
      try {
        const after = await readFile(second.sandbox.tlsServerPath!, 'utf8');
        assert.notEqual(after, before);
        const cert = new X509Certificate(after);
        assert.equal(cert.checkHost('sandbox.internal'), 'sandbox.internal');
        assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
        assert.equal(second.sandbox.url, 'https://sandbox.internal:8700/csc/v2');
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);
