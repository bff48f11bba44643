// TLS to the provider: an HTTPS sandbox (server certificate from its own root) is reached when the
// client trusts that root as an extra CA, and refused, clearly and without retries, when the client
// trusts only the platform's roots or an unrelated CA. A job definition's caFile reaches the client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CscClient, CscError, totpCode } from '../../src/csc';
import { loadJobFile } from '../../src/jobs';
import { SigningContexts } from '../../src/queue/signing-contexts';
import { createRootCa, issueTlsServerCertificate } from '../../src/sandbox/test-ca';
import { makeDataDir, silent, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, { tls: true });
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const read = async (file: string) => (await fs.readFile(file, 'utf8')).trim();

async function refusal(promise: Promise<unknown>): Promise<CscError> {
  const err = await promise.then(
    () => assert.fail('expected a TLS refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CscError, String(err));
  return err;
}

test(
  'the HTTPS sandbox is reached with its root as an extra CA: token, info, authorize, signHash',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    assert.match(fx.sandbox.url, /^https:\/\/127\.0\.0\.1:\d+\/csc\/v2$/);
    const client = await fx.clientFor('fuji-eseal-ec', { caPem: fx.sandbox.rootCertPem });
    const info = await client.info();
    assert.equal(info.oauth2, fx.sandbox.oauth2Url); // the token endpoint is HTTPS too
    const facts = await client.credentialInfo('fuji-eseal-ec');
    const c = fx.credential('fuji-eseal-ec');
    await fx.clock.sleep(1000);
    const { sad } = await client.authorize({
      credentialId: c.credentialId,
      numSignatures: 1,
      pin: await read(c.pinFile),
      otp: totpCode(await read(c.totpSecretFile), { period: c.totpPeriodSec, now: fx.clock.now() }),
    });
    const hash = createHash('sha256').update('over TLS').digest();
    const signatures = await client.signHash({ credential: facts, hashes: [hash], sad });
    assert.equal(signatures.length, 1);
    assert.equal(client.calls.token, 1);
  },
);

test(
  'auth/login over HTTPS with the extra CA, and via the name localhost',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const c = fx.credential('sakura-eseal-rsa');
    const client = new CscClient({
      baseUrl: fx.sandbox.url.replace('127.0.0.1', 'localhost'),
      auth: {
        kind: 'basic',
        username: await read(c.loginUserFile),
        password: await read(c.loginPasswordFile),
      },
      caPem: Buffer.from(fx.sandbox.rootCertPem),
      logger: silent,
    });
    assert.equal((await client.credentialInfo(c.credentialId)).credentialId, c.credentialId);
  },
);

test(
  'without the extra CA the provider certificate is refused: a clear TLS error, not retried',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor('fuji-eseal-ec');
    const err = await refusal(client.credentialInfo('fuji-eseal-ec'));
    assert.match(err.message, /^CSC info failed: TLS: provider certificate not trusted \([A-Z_]+\)$/);
    assert.equal(err.retryable, false);
    assert.equal(err.status, undefined);
    assert.equal(client.calls.info, 1);
    assert.equal(client.calls.token, 0);

    // auth/login goes straight to the CSC base; refused the same way.
    const c = fx.credential('sakura-eseal-rsa');
    const basic = new CscClient({
      baseUrl: fx.sandbox.url,
      auth: { kind: 'basic', username: 'u', password: 'p' },
      logger: silent,
    });
    const loginErr = await refusal(basic.credentialInfo(c.credentialId));
    assert.match(loginErr.message, /^CSC auth\/login failed: TLS: provider certificate not trusted \(/);
    assert.equal(loginErr.retryable, false);
    assert.equal(basic.calls.token, 1);
  },
);

test('an unrelated CA is refused the same way', { timeout: TEST_TIMEOUT_MS }, async () => {
  const other = await createRootCa();
  const client = await fx.clientFor('fuji-eseal-ec', { caPem: other.certPem });
  const err = await refusal(client.credentialInfo('fuji-eseal-ec'));
  assert.match(err.message, /^CSC info failed: TLS: provider certificate not trusted \([A-Z_]+\)$/);
  assert.equal(err.retryable, false);
  assert.equal(client.calls.info, 1);
});

test(
  'a certificate from the right CA but for another host name is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // A server on 127.0.0.1 whose certificate, issued by the sandbox root, names only provider.example.
    const root = {
      certPem: fx.sandbox.rootCertPem,
      keyPem: await read(path.join(dataDir, 'ca', 'root-key.pem')),
    };
    const issued = await issueTlsServerCertificate(root, { dnsNames: ['provider.example'], ipAddresses: [] });
    const server = https.createServer({ key: issued.keyPem, cert: issued.certPem }, (_req, res) =>
      res.end('{}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = await fx.clientFor('fuji-eseal-ec', {
        baseUrl: `https://127.0.0.1:${port}/csc/v2`,
        caPem: fx.sandbox.rootCertPem,
      });
      const err = await refusal(client.credentialInfo('fuji-eseal-ec'));
      assert.match(err.message, /TLS: provider certificate not trusted \(ERR_TLS_CERT_ALTNAME_INVALID\)/);
      assert.equal(err.retryable, false);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  },
);

test(
  'over the extra-CA transport, refusals, challenges and timeouts map as they do over fetch',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const refused = new CscClient({
      baseUrl: fx.sandbox.url,
      auth: { kind: 'bearer', token: 'no-such-token-5d2a' },
      caPem: fx.sandbox.rootCertPem,
      logger: silent,
    });
    const err = await refusal(refused.credentialInfo('fuji-eseal-ec'));
    assert.equal(err.status, 401);
    assert.equal(err.error, 'invalid_token');
    assert.equal(err.challengeError, 'invalid_token');
    assert.match(err.message, /configured bearer token was refused/);

    // A provider that accepts the connection and never answers.
    const root = {
      certPem: fx.sandbox.rootCertPem,
      keyPem: await read(path.join(dataDir, 'ca', 'root-key.pem')),
    };
    const issued = await issueTlsServerCertificate(root, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
    const server = https.createServer({ key: issued.keyPem, cert: issued.certPem }, () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const silentProvider = new CscClient({
        baseUrl: `https://127.0.0.1:${port}/csc/v2`,
        auth: { kind: 'bearer', token: 't' },
        caPem: fx.sandbox.rootCertPem,
        timeoutMs: 300,
        maxRetries: 0,
        logger: silent,
      });
      const timeout = await refusal(silentProvider.credentialInfo('x'));
      assert.equal(timeout.message, 'CSC credentials/info failed: no answer within 300 ms');
      assert.equal(timeout.retryable, true);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  },
);

test(
  "a job definition's caFile is read, checked by preflight and trusted by the signing context",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const c = fx.credential('sakura-eseal-rsa');
    const jobsDir = await fs.mkdtemp(path.join(dataDir, 'jobs-'));
    const writeJob = async (caFile: string) => {
      const file = path.join(jobsDir, 'sakura.json');
      await fs.writeFile(
        file,
        JSON.stringify({
          name: 'sakura-tls',
          cron: '0 2 * * *',
          tenant: 'sakura',
          export: {
            folder: 'inbox',
            columns: { invoiceNumber: 'n', customerName: 'c', amount: 'a', pdfPath: 'p' },
          },
          signing: {
            providerUrl: fx.sandbox.url,
            caFile,
            clientId: c.clientId,
            serviceAuth: { method: 'bearer', token: `file:${c.apiTokenFile}` },
            credentialId: c.credentialId,
            pin: `file:${c.pinFile}`,
            totpSecret: `file:${c.totpSecretFile}`,
          },
          outbox: 'outbox',
        }),
      );
      return loadJobFile(file);
    };
    const contexts = new SigningContexts({ logger: silent });
    try {
      const job = await writeJob(path.relative(jobsDir, fx.sandbox.rootCertPath));
      assert.deepEqual(await contexts.preflight([job]), []);
      const context = await contexts.get(job);
      assert.equal(context.facts.credentialId, c.credentialId);

      await fs.writeFile(path.join(jobsDir, 'not-a-cert.pem'), 'hello\n');
      const bad = await writeJob('not-a-cert.pem');
      assert.match(
        (await contexts.preflight([bad])).map((p) => p.reason).join('\n'),
        /caFile .*not-a-cert\.pem holds no PEM certificate/,
      );
      const missing = await writeJob('nowhere.pem');
      assert.match(
        (await contexts.preflight([missing])).map((p) => p.reason).join('\n'),
        /caFile: cannot read .*nowhere\.pem/,
      );
    } finally {
      await contexts.close();
    }
  },
);
