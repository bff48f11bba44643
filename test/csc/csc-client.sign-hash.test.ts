// signatures/signHash against the sandbox: RSA signatures verify as PKCS#1 v1.5 over our hash, ECDSA
// signatures sent raw (r||s) come back as DER that verifies, and under SCAL2 a SAD signs only the
// hashes it was bound to: the provider refuses others, and a SCAL2 reservation refuses them before
// any request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { p256 } from '@noble/curves/p256';
import { CscError, SadManager, Scal2Reservation, isDerEcdsaSignature, OID, totpCode } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

// DER DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1).
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, { ecdsaSignatureFormat: 'raw' });
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function messages(n: number): { msg: Buffer; hash: Buffer }[] {
  return Array.from({ length: n }, () => {
    const msg = crypto.randomBytes(64);
    return { msg, hash: crypto.createHash('sha256').update(msg).digest() };
  });
}

async function session(id: string) {
  const client = await fx.clientFor(id);
  const credential = await client.credentialInfo(id);
  const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(id), clock: fx.clock });
  return {
    client,
    credential,
    sadManager,
    publicKey: new crypto.X509Certificate(credential.certificates[0]!).publicKey,
  };
}

test(
  'credentials/info gives the chain leaf first and the certificate the sandbox issued',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { credential } = await session('sakura-eseal-rsa');
    const [leaf, root] = credential.certificates.map((d) => new crypto.X509Certificate(d));
    assert.ok(leaf && root);
    assert.ok(leaf.checkIssued(root));
    assert.ok(leaf.verify(root.publicKey));
    assert.equal(root.toString().trim(), fx.sandbox.rootCertPem.trim());
    assert.equal(credential.certificateSerialHex, fx.credential('sakura-eseal-rsa').certificateSerialHex);
    assert.equal(credential.keyAlgorithm, 'rsa');
    assert.equal(credential.signAlgoOid, OID.sha256WithRSAEncryption);
  },
);

test(
  'RSA signatures are PKCS#1 v1.5 over DigestInfo || our hash, in the order sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { client, credential, sadManager, publicKey } = await session('sakura-eseal-rsa');
    const items = messages(3);
    const hashes = items.map((i) => i.hash);
    const reservation = await sadManager.reserve(hashes);
    const sigs = await client.signHash({ credential, reservation, hashes });
    assert.equal(sigs.length, 3);
    sigs.forEach((sig, i) => {
      assert.equal(sig.length, 256);
      const recovered = crypto.publicDecrypt(
        { key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING },
        sig,
      );
      assert.deepEqual(recovered, Buffer.concat([SHA256_DIGEST_INFO, hashes[i]!]));
      assert.ok(crypto.verify('sha256', items[i]!.msg, publicKey, sig));
    });
  },
);

test(
  'raw r||s ECDSA from the provider is normalised to DER that verifies against the certificate',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { client, credential, sadManager, publicKey } = await session('fuji-eseal-ec');
    assert.equal(credential.keyAlgorithm, 'ecdsa');
    assert.equal(credential.signAlgoOid, OID.ecdsaWithSHA256);
    const items = messages(5);
    const hashes = items.map((i) => i.hash);
    const reservation = await sadManager.reserve(hashes);
    const sigs = await client.signHash({ credential, reservation, hashes });
    const rawPoint = publicKey.export({ format: 'jwk' });
    const pub = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(rawPoint.x!, 'base64url'),
      Buffer.from(rawPoint.y!, 'base64url'),
    ]);
    sigs.forEach((sig, i) => {
      assert.ok(isDerEcdsaSignature(sig, 33), `signature ${i} is DER`);
      assert.ok(p256.verify(sig, hashes[i]!, pub, { prehash: false, format: 'der', lowS: false }));
      assert.ok(crypto.verify('sha256', items[i]!.msg, publicKey, sig));
    });
  },
);

test(
  'SCAL2: each batch is authorised for exactly its hashes, and another hash is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    fx.sandbox.resetStats();
    const { client, credential, sadManager, publicKey } = await session('fuji-eseal-ec-scal2');
    assert.equal(credential.scal, 2);
    for (const batch of [messages(2), messages(3)]) {
      const hashes = batch.map((i) => i.hash);
      const reservation = await sadManager.reserve(hashes);
      assert.ok(reservation instanceof Scal2Reservation);
      // Order does not matter: the binding is to the multiset of hashes.
      const sigs = await client.signHash({ credential, reservation, hashes: [...hashes].reverse() });
      sigs.reverse().forEach((sig, i) => assert.ok(crypto.verify('sha256', batch[i]!.msg, publicKey, sig)));
    }
    assert.equal(sadManager.authorisations, 2);
    assert.equal(fx.sandbox.stats().authorize, 2);
    assert.equal(fx.sandbox.stats().errors, 0);

    // The reservation will not lend its SAD to another hash: refused here, nothing sent.
    const [bound, other] = messages(2);
    const reservation = await sadManager.reserve([bound!.hash]);
    const local = await client.signHash({ credential, reservation, hashes: [other!.hash] }).then(
      () => assert.fail('a SCAL2 reservation must refuse a hash it is not bound to'),
      (e: unknown) => e,
    );
    assert.ok(local instanceof CscError);
    assert.equal(local.status, undefined);
    assert.match(local.message, /credential fuji-eseal-ec-scal2: SCAL2 SAD is bound to 1 other hashes/);
    assert.equal(fx.sandbox.stats().signHash, 2);

    // With a bare SAD (what a careless client could send), the provider refuses the unbound hash itself.
    const f = await fx.factorsFor('fuji-eseal-ec-scal2')();
    await fx.clock.sleep(1000); // the manager used this TOTP step; take the next one
    const { sad } = await client.authorize({
      credentialId: credential.credentialId,
      numSignatures: 1,
      hashes: [bound!.hash],
      pin: f.pin,
      otp: totpCode(f.totpSecret!, { period: f.totpPeriod, now: fx.clock.now() }),
    });
    const err = await client.signHash({ credential, sad, hashes: [other!.hash] }).then(
      () => assert.fail('the provider must refuse a hash the SAD is not bound to'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CscError);
    assert.equal(err.endpoint, 'signatures/signHash');
    assert.equal(err.status, 400);
    assert.equal(err.error, 'invalid_request');
    assert.match(err.message, /Hash is not authorized by the SAD/);
    assert.ok(!err.message.includes(sad));
    // The refusal spent nothing: the bound hash still signs under the same SAD, and so does the reservation.
    const [sig] = await client.signHash({ credential, sad, hashes: [bound!.hash] });
    assert.ok(crypto.verify('sha256', bound!.msg, publicKey, sig!));
    const [sig2] = await client.signHash({ credential, reservation, hashes: [bound!.hash] });
    assert.ok(crypto.verify('sha256', bound!.msg, publicKey, sig2!));
  },
);

test(
  'a hash that is not 32 bytes is refused before anything is sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { client, credential } = await session('fuji-eseal-ec');
    fx.sandbox.resetStats();
    await assert.rejects(
      client.signHash({ credential, sad: 'x', hashes: [Buffer.alloc(20)] }),
      /hash 0 has 20 bytes, not the 32 of SHA-256/,
    );
    assert.equal(fx.sandbox.stats().signHash, 0);
  },
);
