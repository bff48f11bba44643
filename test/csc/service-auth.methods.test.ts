// The three service-authentication methods against the sandbox, end to end (credentials/info,
// credentials/authorize, signatures/signHash): OAuth2 client credentials, CSC auth/login with HTTP
// Basic, and a static bearer token. Tokens are refreshed before they expire and once on a 401; a
// second 401 fails with the provider's error; a refused static token fails at once; a wrong password
// is surfaced. Every log line of client and sandbox is captured and searched for the secrets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../../src/common/logger';
import { CscClient, CscError, totpCode, type CscServiceAuth } from '../../src/csc';
import { loadJobFile } from '../../src/jobs';
import { SigningContexts } from '../../src/queue/signing-contexts';
import { ManualClock } from '../sandbox/sandbox-fixture';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

/** Every log line written by any logger made with `logger()`, for the secret search at the end. */
const logLines: string[] = [];
const logger = () =>
  createLogger({ level: 'trace', destination: { write: (s: string) => logLines.push(s) } });
/** Every secret the tests used or were given, searched for in the logs. */
const secretsSeen = new Set<string>();

let dataDir: string;
before(async () => {
  dataDir = await makeDataDir();
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** A secret file's value, remembered for the log search. */
async function read(file: string): Promise<string> {
  const value = await readPlain(file);
  secretsSeen.add(value);
  return value;
}

/** A file's value that is no secret (a login user name may be logged). */
async function readPlain(file: string): Promise<string> {
  return (await fs.readFile(file, 'utf8')).trim();
}

/** A sandbox logging into `logLines`; closing it adds the tokens and SADs it issued to the search. */
async function start(options: Parameters<typeof startFixture>[1] = {}): Promise<Fixture> {
  const fx = await startFixture(dataDir, { logger: logger(), ...options });
  const close = fx.close;
  fx.close = async () => {
    for (const issued of fx.sandbox.issuedSecrets()) secretsSeen.add(issued);
    await close();
  };
  return fx;
}

/** The service auth of `method` for the tenant owning `credentialId`, from the sandbox's secret files. */
async function authFor(
  fx: Fixture,
  method: CscServiceAuth['kind'],
  credentialId: string,
): Promise<CscServiceAuth> {
  const c = fx.credential(credentialId);
  if (method === 'client_credentials') {
    return { kind: method, clientId: c.clientId, clientSecret: await read(c.clientSecretFile) };
  }
  if (method === 'basic') {
    return {
      kind: method,
      username: await readPlain(c.loginUserFile),
      password: await read(c.loginPasswordFile),
    };
  }
  return { kind: method, token: await read(c.apiTokenFile) };
}

/** credentials/info, one authorisation with PIN + TOTP, one signHash; the signature is checked. */
async function sealOnce(fx: Fixture, client: CscClient, credentialId: string): Promise<void> {
  const c = fx.credential(credentialId);
  const facts = await client.credentialInfo(credentialId);
  await fx.clock.sleep(c.totpPeriodSec * 1000); // a TOTP step no earlier authorisation used
  const totpSecret = await read(c.totpSecretFile);
  const { sad } = await client.authorize({
    credentialId,
    numSignatures: 1,
    pin: await read(c.pinFile),
    otp: totpCode(totpSecret, { period: c.totpPeriodSec, now: fx.clock.now() }),
  });
  secretsSeen.add(sad);
  const data = Buffer.from(`invoice sealed by ${credentialId}`);
  const hash = createHash('sha256').update(data).digest();
  const [signature] = await client.signHash({ credential: facts, hashes: [hash], sad });
  const key = createPublicKey(
    new X509Certificate(facts.certificates[0]!).publicKey.export({ format: 'pem', type: 'spki' }),
  );
  assert.ok(verify('sha256', data, key, signature!), 'signature verifies with the credential certificate');
}

for (const method of ['client_credentials', 'basic', 'bearer'] as const) {
  test(
    `service auth ${method}: credentials/info, authorize and signHash work end to end`,
    TIMEOUT,
    async () => {
      const fx = await start();
      try {
        for (const credentialId of ['sakura-eseal-rsa', 'fuji-eseal-ec']) {
          const client = new CscClient({
            baseUrl: fx.sandbox.url,
            auth: await authFor(fx, method, credentialId),
            logger: logger(),
            timeoutMs: 5000,
          });
          await sealOnce(fx, client, credentialId);
          // One token per client (none for a static token), reused for all three calls.
          assert.equal(client.calls.token, method === 'bearer' ? 0 : 1);
        }
        assert.equal(fx.sandbox.stats().errors, 0);
        assert.equal(fx.sandbox.stats().signatures, 2);
      } finally {
        await fx.close();
      }
    },
  );
}

for (const method of ['client_credentials', 'basic'] as const) {
  test(
    `service auth ${method}: the token is refreshed before it expires, without a 401`,
    TIMEOUT,
    async () => {
      // Client and sandbox on one ManualClock: the token's life passes when the test moves it.
      const clock = new ManualClock();
      const fx = await start({ tokenLifetimeSec: 2, clock });
      try {
        const client = new CscClient({
          baseUrl: fx.sandbox.url,
          auth: await authFor(fx, method, 'fuji-eseal-ec'),
          logger: logger(),
          now: clock.now,
        });
        await client.credentialInfo('fuji-eseal-ec');
        // Past the refresh point (expires_in minus a tenth), still inside the sandbox's lifetime, where
        // the old token would still be accepted: the client asks for a new token first, no 401.
        clock.advance(1900);
        await client.credentialInfo('fuji-eseal-ec');
        assert.equal(client.calls.token, 2);
        assert.equal(fx.sandbox.stats().token, 2);
        assert.equal(fx.sandbox.stats().credentialsInfo, 2);
        assert.equal(fx.sandbox.stats().errors, 0);
      } finally {
        await fx.close();
      }
    },
  );

  test(
    `service auth ${method}: a token refused with 401 is replaced once and the call succeeds`,
    TIMEOUT,
    async () => {
      const clock = new ManualClock();
      const fx = await start({ tokenLifetimeSec: 0.3, clock });
      try {
        const frozen = clock.now(); // the client believes its token fresh: only the 401 can tell it
        const client = new CscClient({
          baseUrl: fx.sandbox.url,
          auth: await authFor(fx, method, 'fuji-eseal-ec'),
          logger: logger(),
          now: () => frozen,
        });
        await client.credentialInfo('fuji-eseal-ec');
        clock.advance(300); // the sandbox's clock reaches the token's end
        await client.credentialInfo('fuji-eseal-ec');
        assert.equal(client.calls.token, 2);
        assert.equal(fx.sandbox.stats().credentialsInfo, 3); // ok, 401 expired_token, ok
        assert.equal(fx.sandbox.stats().errors, 1);
      } finally {
        await fx.close();
      }
    },
  );

  test(`service auth ${method}: a second 401 fails with the provider's error`, TIMEOUT, async () => {
    // Every token expires while the sandbox's latency holds the request: each one is refused.
    const fx = await start({ tokenLifetimeSec: 0.05, latencyMs: 150 });
    try {
      const client = new CscClient({
        baseUrl: fx.sandbox.url,
        auth: await authFor(fx, method, 'fuji-eseal-ec'),
        logger: logger(),
      });
      const err = await client.credentialInfo('fuji-eseal-ec').then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CscError);
      assert.equal(err.endpoint, 'credentials/info');
      assert.equal(err.status, 401);
      assert.equal(err.error, 'expired_token');
      assert.equal(err.retryable, false);
      assert.equal(client.calls.token, 2);
      assert.equal(fx.sandbox.stats().credentialsInfo, 2);
    } finally {
      await fx.close();
    }
  });
}

test(
  'service auth basic: a wrong password is refused by auth/login with 401, not retried',
  TIMEOUT,
  async () => {
    const fx = await start();
    try {
      const password = 'wrong-password-6c1e2f';
      secretsSeen.add(password);
      const client = new CscClient({
        baseUrl: fx.sandbox.url,
        auth: {
          kind: 'basic',
          username: await readPlain(fx.credential('sakura-eseal-rsa').loginUserFile),
          password,
        },
        logger: logger(),
      });
      const err = await client.credentialInfo('sakura-eseal-rsa').then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CscError);
      assert.equal(err.endpoint, 'auth/login');
      assert.equal(err.status, 401);
      assert.equal(err.error, 'access_denied');
      assert.equal(err.retryable, false);
      assert.match(err.message, /^CSC auth\/login failed: HTTP 401 access_denied: /);
      assert.ok(!err.message.includes(password));
      assert.equal(client.calls.token, 1);
      assert.equal(fx.sandbox.stats().credentialsInfo, 0);
    } finally {
      await fx.close();
    }
  },
);

test(
  'service auth bearer: a refused static token fails at once, saying the configured token was refused',
  TIMEOUT,
  async () => {
    const fx = await start();
    try {
      const token = 'not-an-issued-token-93b1d0';
      secretsSeen.add(token);
      const client = new CscClient({
        baseUrl: fx.sandbox.url,
        auth: { kind: 'bearer', token },
        logger: logger(),
      });
      const err = await client.credentialInfo('sakura-eseal-rsa').then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CscError);
      assert.equal(err.status, 401);
      assert.equal(err.error, 'invalid_token');
      assert.equal(err.retryable, false);
      assert.match(err.message, /HTTP 401 invalid_token: .*configured bearer token was refused/);
      assert.ok(!err.message.includes(token));
      assert.equal(client.calls.token, 0);
      assert.equal(fx.sandbox.stats().credentialsInfo, 1); // sent once, never re-sent
    } finally {
      await fx.close();
    }
  },
);

test(
  'job definitions: each serviceAuth method is wired into the signing context, secrets by reference',
  TIMEOUT,
  async () => {
    const fx = await start();
    const jobsDir = await fs.mkdtemp(path.join(dataDir, 'jobs-'));
    try {
      const c = fx.credential('sakura-eseal-rsa');
      const methods = {
        client_credentials: {},
        basic: {
          serviceAuth: {
            method: 'basic',
            username: await readPlain(c.loginUserFile),
            password: `file:${c.loginPasswordFile}`,
          },
        },
        bearer: { serviceAuth: { method: 'bearer', token: 'env:SAKURA_API_TOKEN' } },
      };
      const env = { SAKURA_API_TOKEN: await read(c.apiTokenFile) };
      for (const [method, extra] of Object.entries(methods)) {
        const file = path.join(jobsDir, `${method}.json`);
        await fs.writeFile(
          file,
          JSON.stringify({
            name: `sakura-${method.replace('_', '-')}`,
            cron: '0 2 * * *',
            tenant: 'sakura',
            export: {
              folder: 'inbox',
              columns: { invoiceNumber: 'n', customerName: 'c', amount: 'a', pdfPath: 'p' },
            },
            signing: {
              providerUrl: fx.sandbox.url,
              clientId: c.clientId,
              clientSecret: `file:${c.clientSecretFile}`,
              credentialId: c.credentialId,
              pin: `file:${c.pinFile}`,
              totpSecret: `file:${c.totpSecretFile}`,
              ...extra,
            },
            outbox: 'outbox',
          }),
        );
        const job = await loadJobFile(file);
        const contexts = new SigningContexts({ logger: logger(), env });
        try {
          assert.deepEqual(await contexts.preflight([job]), [], method);
          const context = await contexts.get(job);
          assert.equal(context.facts.credentialId, 'sakura-eseal-rsa');
          assert.equal(context.client.calls.token, method === 'bearer' ? 0 : 1, method);
        } finally {
          await contexts.close();
        }
        // A reference that does not resolve is named by preflight, its value never shown.
        const broken = new SigningContexts({ logger: logger(), env: {} });
        const problems = await broken.preflight([job]);
        if (method === 'bearer')
          assert.match(problems.map((p) => p.reason).join('\n'), /env:SAKURA_API_TOKEN/);
        else assert.deepEqual(problems, []);
      }
    } finally {
      await fx.close();
    }
  },
);

test(
  'no log line of client or sandbox holds a password, client secret, token, PIN, TOTP secret or SAD',
  TIMEOUT,
  async () => {
    const fx = await start();
    try {
      for (const c of fx.sandbox.credentials) {
        for (const f of [
          c.clientSecretFile,
          c.loginPasswordFile,
          c.apiTokenFile,
          c.pinFile,
          c.totpSecretFile,
        ]) {
          await read(f);
        }
      }
    } finally {
      await fx.close();
    }
    assert.ok(
      logLines.length > 20,
      `expected the earlier tests to have logged, got ${logLines.length} lines`,
    );
    assert.ok(secretsSeen.size > 20);
    // The capture saw both sides, refusals included.
    assert.ok(logLines.some((l) => l.includes('"path":"/csc/v2/auth/login"')));
    assert.ok(logLines.some((l) => l.includes('sandbox: auth/login failed')));
    assert.ok(logLines.some((l) => l.includes('refused the configured bearer token')));
    assert.ok(logLines.some((l) => l.includes('service token refused; fetching a new one')));
    for (const secret of secretsSeen) {
      // A 6-digit PIN may turn up inside a timestamp by chance; a leaked one would be a JSON string.
      const needle = /^\d+$/.test(secret) ? `"${secret}"` : secret;
      const leaked = logLines.find((line) => line.includes(needle));
      assert.equal(leaked, undefined, `a log line holds a secret: ${leaked?.slice(0, 200)}`);
    }
  },
);
