// The implicit credential (CSC auth mode "implicit"): credentials/info says so with no authentication
// objects, credentials/authorize issues a SAD on the service token alone and refuses authData it did not
// ask for, and a dataDir made before the credential existed gains it on its next start.
import assert from 'node:assert/strict';
import { verify, X509Certificate } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  b64,
  credential,
  csc,
  digestOf,
  errorOf,
  getToken,
  makeDataDir,
  RSA_OID,
  secret,
  SHA256_OID,
  startFixture,
  type Fixture,
} from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const IMPLICIT = 'sakura-eseal-implicit';

let fx: Fixture;
let sakuraToken: string;
let fujiToken: string;

before(async () => {
  fx = await startFixture({ lockAfterFailures: 2 });
  sakuraToken = await getToken(fx.sandbox, 'sakura-app');
  fujiToken = await getToken(fx.sandbox, 'fuji-app');
});
after(async () => fx.close());

test(
  'credentials/info of the implicit credential says mode implicit and lists no authentication objects',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const cred = credential(fx.sandbox, IMPLICIT);
    assert.deepEqual(
      [cred.tenant, cred.keyType, cred.scal, cred.multisign, cred.authMode],
      ['sakura', 'rsa-2048', 1, 500, 'implicit'],
    );
    const res = await csc(fx.sandbox, 'credentials/info', sakuraToken, {
      credentialID: IMPLICIT,
      certificates: 'chain',
      certInfo: true,
      authInfo: true,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.authMode, 'implicit');
    assert.deepEqual(res.body.auth, { mode: 'implicit' });
    assert.equal(res.body.SCAL, '1');
    assert.equal(res.body.multisign, 500);
    assert.equal((res.body.key as { len: number }).len, 2048);
    const leaf = new X509Certificate(
      Buffer.from((res.body.cert as { certificates: string[] }).certificates[0]!, 'base64'),
    );
    assert.match(leaf.subject, /O=Sakura Shoji K\.K\./);
    assert.equal(leaf.serialNumber.toUpperCase(), cred.certificateSerialHex);
    // Its factor files exist like every credential's, private, but hold no PIN and no TOTP secret.
    for (const file of [cred.pinFile, cred.totpSecretFile]) {
      assert.equal((await stat(file)).mode & 0o777, 0o600, file);
      assert.match(await secret(file), /^not-a-factor-[A-Za-z0-9_-]{24}$/, file);
    }
  },
);

test(
  'credentials/authorize gives a SAD with no authData, and signHash spends it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const auth = await csc(fx.sandbox, 'credentials/authorize', sakuraToken, {
      credentialID: IMPLICIT,
      numSignatures: 2,
    });
    assert.equal(auth.status, 200, JSON.stringify(auth.body));
    assert.equal(auth.body.expiresIn, 3600);
    const sad = auth.body.SAD as string;
    assert.ok(fx.sandbox.issuedSecrets().includes(sad));

    const res = await csc(fx.sandbox, 'signatures/signHash', sakuraToken, {
      credentialID: IMPLICIT,
      SAD: sad,
      hashes: [b64(digestOf('invoice-1')), b64(digestOf('invoice-2'))],
      hashAlgorithmOID: SHA256_OID,
      signAlgo: RSA_OID,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const info = await csc(fx.sandbox, 'credentials/info', sakuraToken, { credentialID: IMPLICIT });
    const cert = new X509Certificate(
      Buffer.from((info.body.cert as { certificates: string[] }).certificates[0]!, 'base64'),
    );
    (res.body.signatures as string[]).forEach((s, i) => {
      const ok = verify('sha256', Buffer.from(`invoice-${i + 1}`), cert.publicKey, Buffer.from(s, 'base64'));
      assert.ok(ok, `signature ${i} verifies`);
    });
    // Counted like any SAD: a third signature is refused.
    const spent = await csc(fx.sandbox, 'signatures/signHash', sakuraToken, {
      credentialID: IMPLICIT,
      SAD: sad,
      hashes: [b64(digestOf('invoice-3'))],
      signAlgo: RSA_OID,
      hashAlgorithmOID: SHA256_OID,
    });
    assert.equal(errorOf(spent).status, 400);
  },
);

test(
  'authData sent to the implicit credential is refused, without counting towards a lockout',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const explicit = credential(fx.sandbox, 'sakura-eseal-rsa');
    const implicit = credential(fx.sandbox, IMPLICIT);
    const bodies = [
      { authData: [{ id: 'PIN', value: await secret(explicit.pinFile) }] },
      { authData: [{ id: 'PIN', value: await secret(implicit.pinFile) }] },
      { authData: [] },
      { authData: [{ id: 'OTP', value: '123456' }] },
    ];
    for (const extra of bodies) {
      const res = await csc(fx.sandbox, 'credentials/authorize', sakuraToken, {
        credentialID: IMPLICIT,
        numSignatures: 1,
        ...extra,
      });
      assert.deepEqual(errorOf(res), {
        status: 400,
        error: 'invalid_request',
        description: `Invalid parameter authData: credential ${IMPLICIT} uses implicit authorisation and takes no authentication data`,
      });
    }
    // lockAfterFailures is 2, and four refusals later the credential still authorises.
    const ok = await csc(fx.sandbox, 'credentials/authorize', sakuraToken, {
      credentialID: IMPLICIT,
      numSignatures: 1,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  },
);

test(
  'the implicit credential keeps the other rules: its tenant only, multisign, numSignatures',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const other = await csc(fx.sandbox, 'credentials/authorize', fujiToken, {
      credentialID: IMPLICIT,
      numSignatures: 1,
    });
    assert.deepEqual(errorOf(other), {
      status: 400,
      error: 'invalid_request',
      description: 'Invalid parameter credentialID',
    });
    const tooMany = await csc(fx.sandbox, 'credentials/authorize', sakuraToken, {
      credentialID: IMPLICIT,
      numSignatures: 501,
    });
    assert.equal(errorOf(tooMany).status, 400);
    const none = await csc(fx.sandbox, 'credentials/authorize', sakuraToken, {
      credentialID: IMPLICIT,
      numSignatures: 0,
    });
    assert.equal(errorOf(none).status, 400);
    const noToken = await csc(fx.sandbox, 'credentials/authorize', undefined, {
      credentialID: IMPLICIT,
      numSignatures: 1,
    });
    assert.equal(noToken.status, 401);
  },
);

test(
  'a dataDir made before the implicit credential existed gains it on load, keeping everything else',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dataDir = await makeDataDir();
    try {
      // One PKI base for every start, so certificates are re-issued only for the credential added.
      const pkiBaseUrl = 'http://sandbox-pki.test';
      const first = await startFixture({ pkiBaseUrl }, dataDir);
      const kept = first.sandbox.credentials.filter((c) => c.credentialId !== IMPLICIT);
      const pins = await Promise.all(kept.map((c) => secret(c.pinFile)));
      await first.close();

      // Make it look like an old dataDir: no implicit credential in state.json or on disk.
      const statePath = path.join(dataDir, 'state.json');
      const state = JSON.parse(await readFile(statePath, 'utf8')) as {
        credentials: Array<{ credentialId: string; authMode?: string }>;
      };
      state.credentials = state.credentials.filter((c) => c.credentialId !== IMPLICIT);
      assert.ok(state.credentials.every((c) => c.authMode === undefined));
      await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`);
      await rm(path.join(dataDir, 'credentials', IMPLICIT), { recursive: true });
      for (const ext of ['pin', 'totp'])
        await rm(path.join(dataDir, 'secrets', 'sakura', `${IMPLICIT}.${ext}`));

      // Two sandboxes upgrade it at once: both end up serving the same certificate.
      const [a, b] = await Promise.all([
        startFixture({ pkiBaseUrl }, dataDir),
        startFixture({ pkiBaseUrl }, dataDir),
      ]);
      try {
        for (const fixture of [a, b]) {
          const upgraded = fixture.sandbox.credentials;
          assert.deepEqual(
            upgraded.filter((c) => c.credentialId !== IMPLICIT),
            kept,
          );
          assert.deepEqual(
            await Promise.all(
              upgraded.filter((c) => c.credentialId !== IMPLICIT).map((c) => secret(c.pinFile)),
            ),
            pins,
          );
        }
        const serials = [a, b].map((f) => credential(f.sandbox, IMPLICIT).certificateSerialHex);
        assert.equal(serials[0], serials[1]);
        const token = await getToken(a.sandbox, 'sakura-app');
        const info = await csc(a.sandbox, 'credentials/info', token, {
          credentialID: IMPLICIT,
          certificates: 'chain',
        });
        assert.deepEqual(info.body.auth, { mode: 'implicit' });
        const [leaf, root] = (info.body.cert as { certificates: string[] }).certificates.map(
          (c) => new X509Certificate(Buffer.from(c, 'base64')),
        );
        assert.ok(leaf!.verify(root!.publicKey), 'issued by the dataDir root');
        assert.equal(
          root!.toString(),
          new X509Certificate(await readFile(a.sandbox.rootCertPath)).toString(),
        );
        const authorised = await csc(a.sandbox, 'credentials/authorize', token, {
          credentialID: IMPLICIT,
          numSignatures: 1,
        });
        assert.equal(authorised.status, 200);
        const saved = JSON.parse(await readFile(statePath, 'utf8')) as typeof state;
        assert.deepEqual(
          saved.credentials.filter((c) => c.credentialId === IMPLICIT).map((c) => c.authMode),
          ['implicit'],
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      assert.match(
        await secret(path.join(dataDir, 'secrets', 'sakura', `${IMPLICIT}.pin`)),
        /^not-a-factor-/,
      );
      // The key is private, as every key is.
      assert.equal((await stat(path.join(dataDir, 'credentials', IMPLICIT, 'key.pem'))).mode & 0o777, 0o600);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);
