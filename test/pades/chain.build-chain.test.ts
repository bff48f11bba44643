import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { buildChain, ChainError } from '../../src/pades';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as EcKeyGenParams & EcdsaParams;

interface Made {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  der: Buffer;
}

let serial = 0x100;
async function make(subject: string, issuer: Made | undefined, ca: boolean): Promise<Made> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(4, '0'),
    subject,
    issuer: issuer ? issuer.cert.subject : subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    publicKey: keys.publicKey,
    signingKey: (issuer ?? { keys }).keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(ca, undefined, true),
      new x509.KeyUsagesExtension(
        ca
          ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
          : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create((issuer ?? { keys }).keys.publicKey),
    ],
  });
  return { cert, keys, der: Buffer.from(cert.rawData) };
}

test(
  'buildChain orders leaf, intermediate, root from a shuffled pool, as openssl verify accepts it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await make('CN=Chain Root', undefined, true);
    const inter = await make('CN=Chain Intermediate', root, true);
    const leaf = await make('CN=Chain Leaf', inter, false);
    const other = await make('CN=Other Root', undefined, true);
    const chain = buildChain(leaf.der, [other.der, root.der, inter.der], [root.der]);
    assert.deepEqual(chain, [leaf.der, inter.der, root.der]);

    const dir = await tempDir();
    const pem = (m: Made) => m.cert.toString('pem');
    await writeFile(join(dir, 'root.pem'), pem(root));
    await writeFile(join(dir, 'inter.pem'), pem(inter));
    await writeFile(join(dir, 'leaf.pem'), pem(leaf));
    const out = execFileSync(
      'openssl',
      ['verify', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    assert.match(out, /leaf\.pem: OK/);
  },
);

test(
  'buildChain: a leaf that is itself a trusted root is its own chain',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await make('CN=Solo Root', undefined, true);
    assert.deepEqual(buildChain(root.der, [], [root.der]), [root.der]);
  },
);

test(
  'buildChain refuses an impostor issuer with the right name but another key, naming the stuck certificate',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await make('CN=Chain Root', undefined, true);
    const inter = await make('CN=Chain Intermediate', root, true);
    const leaf = await make('CN=Chain Leaf', inter, false);
    // Same subject as the real intermediate, issued by the root, but a different key.
    const impostor = await make('CN=Chain Intermediate', root, true);
    assert.throws(
      () => buildChain(leaf.der, [impostor.der], [root.der]),
      (err: unknown) => {
        assert.ok(err instanceof ChainError);
        assert.match(err.certificate, /^CN=Chain Leaf serial 0*[0-9A-F]+$/);
        assert.match(
          err.message,
          /CN=Chain Leaf serial [0-9A-F]+ has no issuer among the 1 pool and 1 trusted/,
        );
        return true;
      },
    );
    // With the real one present the impostor is passed over.
    assert.deepEqual(buildChain(leaf.der, [impostor.der, inter.der], [root.der]), [
      leaf.der,
      inter.der,
      root.der,
    ]);
  },
);

test('buildChain refuses a chain ending at a root nobody trusts', { timeout: TEST_TIMEOUT_MS }, async () => {
  const root = await make('CN=Untrusted Root', undefined, true);
  const leaf = await make('CN=Leaf Under Untrusted', root, false);
  const trusted = await make('CN=Trusted Root', undefined, true);
  assert.throws(
    () => buildChain(leaf.der, [root.der], [trusted.der]),
    (err: unknown) =>
      err instanceof ChainError &&
      /CN=Untrusted Root serial [0-9A-F]+ is self-issued but not a trusted root/.test(err.message),
  );
});
