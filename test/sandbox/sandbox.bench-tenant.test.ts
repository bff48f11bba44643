// The bench tenant: made only when asked (benchTenant), added to an existing dataDir without touching
// what it holds, kept from then on; its credentials authorise up to multisign 100,000 and no more, and
// a signHash of 100 hashes on the P-256 one returns signatures OpenSSL verifies.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import {
  authorize,
  b64,
  credential,
  csc,
  ECDSA_SHA256_OID,
  getToken,
  makeDataDir,
  secret,
  SHA256_OID,
  startFixture,
} from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'the bench tenant is provisioned on request into an existing dataDir, kept, and strict about multisign',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      const pkiBaseUrl = 'http://sandbox-pki.test';
      const first = await startFixture({ pkiBaseUrl }, dataDir);
      const before = first.sandbox.credentials;
      const pinsBefore = await Promise.all(before.map((c) => secret(c.pinFile)));
      assert.ok(!before.some((c) => c.tenant === 'bench'), 'not made unless asked');
      await first.close();

      const second = await startFixture({ pkiBaseUrl, benchTenant: true }, dataDir);
      try {
        const creds = second.sandbox.credentials;
        assert.deepEqual(
          creds.filter((c) => c.tenant !== 'bench'),
          before,
        );
        assert.deepEqual(await Promise.all(before.map((c) => secret(c.pinFile))), pinsBefore);
        assert.deepEqual(
          creds
            .filter((c) => c.tenant === 'bench')
            .map((c) => [c.clientId, c.credentialId, c.keyType, c.scal, c.multisign, c.authMode]),
          [
            ['bench-app', 'bench-eseal-rsa', 'rsa-2048', 1, 100_000, 'explicit'],
            ['bench-app', 'bench-eseal-ec', 'ecdsa-p256', 1, 100_000, 'explicit'],
          ],
        );
        const state = JSON.parse(await readFile(path.join(dataDir, 'state.json'), 'utf8')) as {
          tenants: { tenant: string }[];
        };
        assert.deepEqual(
          state.tenants.map((t) => t.tenant),
          ['sakura', 'fuji', 'bench'],
        );

        const token = await getToken(second.sandbox, 'bench-app');
        const ec = credential(second.sandbox, 'bench-eseal-ec');
        const over = await authorize(second.sandbox, token, ec, { numSignatures: 100_001 });
        assert.equal(over.status, 400, JSON.stringify(over.body));
        const ok = await authorize(second.sandbox, token, ec, { numSignatures: 100_000 });
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
        const messages = Array.from({ length: 100 }, () => randomBytes(32));
        const signed = await csc(second.sandbox, 'signatures/signHash', token, {
          credentialID: ec.credentialId,
          SAD: ok.body.SAD,
          hashes: messages.map((m) => b64(createHash('sha256').update(m).digest())),
          hashAlgorithmOID: SHA256_OID,
          signAlgo: ECDSA_SHA256_OID,
        });
        assert.equal(signed.status, 200, JSON.stringify(signed.body));
        const info = await csc(second.sandbox, 'credentials/info', token, { credentialID: ec.credentialId });
        const certB64 = (info.body.cert as { certificates: string[] }).certificates[0]!;
        const publicKey = createPublicKey(
          `-----BEGIN CERTIFICATE-----\n${certB64}\n-----END CERTIFICATE-----\n`,
        );
        const sigs = signed.body.signatures as string[];
        assert.equal(sigs.length, 100);
        sigs.forEach((s, i) =>
          assert.ok(verify('sha256', messages[i]!, publicKey, Buffer.from(s, 'base64')), `signature ${i}`),
        );
      } finally {
        await second.close();
      }

      // Kept without the option: the dataDir has it now.
      const third = await startFixture({ pkiBaseUrl }, dataDir);
      try {
        assert.equal(third.sandbox.credentials.filter((c) => c.tenant === 'bench').length, 2);
      } finally {
        await third.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);
