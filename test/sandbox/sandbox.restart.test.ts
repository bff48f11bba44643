// Persistence: a sandbox restarted on the same dataDir serves the same root, certificates and secrets
// (so sealed PDFs keep verifying and stored factors keep working); secret files are private (0600);
// the TOTP period is a per-start option (default 30 s), not part of the stored state. Certificates stay
// the same while the PKI base URL they name does (a restart on another port re-issues them for the same
// keys: sandbox.ocsp-crl.test.ts), so both starts here name one fixed pkiBaseUrl.
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { SandboxError, startSandbox } from '../../src/sandbox';
import { authorize, credential, csc, getToken, makeDataDir, secret, startFixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'restart with the same dataDir keeps the certificates, secrets and factors',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      const pkiBaseUrl = 'http://sandbox-pki.test';
      const first = await startFixture({ pkiBaseUrl }, dataDir);
      const token1 = await getToken(first.sandbox, 'fuji-app');
      const info1 = await csc(first.sandbox, 'credentials/info', token1, {
        credentialID: 'fuji-eseal-ec',
        certificates: 'chain',
      });
      const creds1 = first.sandbox.credentials;
      const secrets1 = await Promise.all(creds1.map((c) => secret(c.pinFile)));
      await first.close();

      const second = await startFixture({ pkiBaseUrl }, dataDir);
      try {
        assert.deepEqual(second.sandbox.credentials, creds1);
        assert.equal(
          second.sandbox.rootCertPem,
          await readFile(path.join(dataDir, 'ca', 'root.pem'), 'utf8'),
        );
        assert.deepEqual(
          await Promise.all(second.sandbox.credentials.map((c) => secret(c.pinFile))),
          secrets1,
        );
        const token2 = await getToken(second.sandbox, 'fuji-app');
        assert.notEqual(token2, token1);
        const info2 = await csc(second.sandbox, 'credentials/info', token2, {
          credentialID: 'fuji-eseal-ec',
          certificates: 'chain',
        });
        assert.deepEqual(info2.body.cert, info1.body.cert);
        // The old token died with the old process; the stored factors still authorise.
        assert.equal((await csc(second.sandbox, 'credentials/list', token1, {})).status, 401);
        assert.equal(
          (await authorize(second.sandbox, token2, credential(second.sandbox, 'fuji-eseal-ec'))).status,
          200,
        );
      } finally {
        await second.close();
      }

      // The TOTP period is an option of each start, 30 s unless set; a bad one is refused before anything.
      await assert.rejects(
        startSandbox({ dataDir, logger: pino({ level: 'silent' }), totpPeriodSec: 1.5 }),
        (err: unknown) =>
          err instanceof SandboxError && /totpPeriodSec must be an integer from 1 to 3600/.test(err.message),
      );
      const third = await startSandbox({ dataDir, logger: pino({ level: 'silent' }) });
      try {
        assert.deepEqual(
          third.credentials.map((c) => c.totpPeriodSec),
          [30, 30, 30, 30],
        );
        const token3 = await getToken(third, 'fuji-app');
        const info3 = await csc(third, 'credentials/info', token3, {
          credentialID: 'fuji-eseal-ec',
          authInfo: true,
        });
        const objects = (info3.body.auth as { objects: { id: string; description: string }[] }).objects;
        assert.match(objects.find((o) => o.id === 'OTP')!.description, /RFC 6238, SHA-1, 30 s/);
      } finally {
        await third.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);

test(
  'provisioning writes the documented files, secrets with mode 0600 and one trailing newline',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fx = await startFixture();
    try {
      const cred = credential(fx.sandbox, 'sakura-eseal-rsa');
      assert.equal(cred.clientSecretFile, path.join(fx.dataDir, 'secrets', 'sakura', 'client-secret'));
      assert.equal(cred.pinFile, path.join(fx.dataDir, 'secrets', 'sakura', 'sakura-eseal-rsa.pin'));
      assert.equal(cred.totpSecretFile, path.join(fx.dataDir, 'secrets', 'sakura', 'sakura-eseal-rsa.totp'));
      assert.equal(fx.sandbox.rootCertPath, path.join(fx.dataDir, 'ca', 'root.pem'));
      for (const file of [cred.clientSecretFile, cred.pinFile, cred.totpSecretFile]) {
        assert.equal((await stat(file)).mode & 0o777, 0o600, file);
        assert.match(await readFile(file, 'utf8'), /^[^\n]+\n$/, file);
      }
      assert.match(await secret(cred.pinFile), /^\d{6}$/);
      assert.match(await secret(cred.totpSecretFile), /^[A-Z2-7]+=*$/);
      assert.deepEqual(
        fx.sandbox.credentials.map((c) => [
          c.tenant,
          c.clientId,
          c.credentialId,
          c.keyType,
          c.scal,
          c.multisign,
          c.authMode,
        ]),
        [
          ['sakura', 'sakura-app', 'sakura-eseal-rsa', 'rsa-2048', 1, 500, 'explicit'],
          ['sakura', 'sakura-app', 'sakura-eseal-implicit', 'rsa-2048', 1, 500, 'implicit'],
          ['fuji', 'fuji-app', 'fuji-eseal-ec', 'ecdsa-p256', 1, 500, 'explicit'],
          ['fuji', 'fuji-app', 'fuji-eseal-ec-scal2', 'ecdsa-p256', 2, 500, 'explicit'],
        ],
      );
    } finally {
      await fx.close();
    }
  },
);
