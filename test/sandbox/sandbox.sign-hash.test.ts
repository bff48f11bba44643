// signatures/signHash: RSA and ECDSA signatures that node:crypto verifies against the certificate,
// DER and raw ECDSA formats, and every refusal a strict provider makes (spent, over-drawn, expired
// or foreign SAD, unbound SCAL2 hash, wrong algorithm, wrong digest length, too many hashes).
import assert from 'node:assert/strict';
import { constants, publicDecrypt, verify, X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  authorize,
  b64,
  credential,
  csc,
  digestOf,
  ECDSA_SHA256_OID,
  errorOf,
  getToken,
  makeDataDir,
  ManualClock,
  RSA_OID,
  SHA256_OID,
  SHA256_RSA_OID,
  startFixture,
  type Fixture,
} from './sandbox-fixture';
import { rm } from 'node:fs/promises';
import type { SandboxHandle } from '../../src/sandbox';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

const DIGEST_INFO_SHA256 = Buffer.from('3031300d060960864801650304020105000420', 'hex');

let dataDir: string;
let fx: Fixture;
let fujiToken: string;
let sakuraToken: string;

before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture({ maxHashesPerCall: 5 }, dataDir);
  fujiToken = await getToken(fx.sandbox, 'fuji-app');
  sakuraToken = await getToken(fx.sandbox, 'sakura-app');
});
after(async () => {
  await fx.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function leafCertificate(
  sandbox: SandboxHandle,
  token: string,
  credentialID: string,
): Promise<X509Certificate> {
  const res = await csc(sandbox, 'credentials/info', token, { credentialID });
  return new X509Certificate(
    Buffer.from((res.body.cert as { certificates: string[] }).certificates[0]!, 'base64'),
  );
}

async function sadFor(
  sandbox: SandboxHandle,
  token: string,
  credentialId: string,
  extra: Record<string, unknown> = {},
) {
  const res = await authorize(sandbox, token, credential(sandbox, credentialId), extra);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.SAD as string;
}

function signHash(sandbox: SandboxHandle, token: string, body: Record<string, unknown>) {
  return csc(sandbox, 'signatures/signHash', token, body);
}

test(
  'RSA signatures verify against the certificate, for rsaEncryption and sha256WithRSA',
  TIMEOUT,
  async () => {
    const messages = ['invoice-001', 'invoice-002', 'invoice-003'];
    const sad = await sadFor(fx.sandbox, sakuraToken, 'sakura-eseal-rsa', { numSignatures: 3 });
    const res = await signHash(fx.sandbox, sakuraToken, {
      credentialID: 'sakura-eseal-rsa',
      SAD: sad,
      hashes: messages.slice(0, 2).map((m) => b64(digestOf(m))),
      hashAlgorithmOID: SHA256_OID,
      signAlgo: RSA_OID,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const signatures = (res.body.signatures as string[]).map((s) => Buffer.from(s, 'base64'));
    assert.equal(signatures.length, 2);
    const cert = await leafCertificate(fx.sandbox, sakuraToken, 'sakura-eseal-rsa');
    signatures.forEach((sig, i) => {
      assert.equal(sig.length, 256);
      assert.ok(verify('sha256', Buffer.from(messages[i]!), cert.publicKey, sig), `signature ${i} verifies`);
      const recovered = publicDecrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, sig);
      assert.deepEqual(recovered, Buffer.concat([DIGEST_INFO_SHA256, digestOf(messages[i]!)]));
    });

    // sha256WithRSA implies the hash algorithm, so hashAlgorithmOID may be left out.
    const third = await signHash(fx.sandbox, sakuraToken, {
      credentialID: 'sakura-eseal-rsa',
      SAD: sad,
      hashes: [b64(digestOf(messages[2]!))],
      signAlgo: SHA256_RSA_OID,
    });
    assert.equal(third.status, 200);
    const sig = Buffer.from((third.body.signatures as string[])[0]!, 'base64');
    assert.ok(verify('sha256', Buffer.from(messages[2]!), cert.publicKey, sig));
  },
);

test('rsaEncryption without hashAlgorithmOID is refused', TIMEOUT, async () => {
  const sad = await sadFor(fx.sandbox, sakuraToken, 'sakura-eseal-rsa');
  const res = await signHash(fx.sandbox, sakuraToken, {
    credentialID: 'sakura-eseal-rsa',
    SAD: sad,
    hashes: [b64(digestOf('x'))],
    signAlgo: RSA_OID,
  });
  assert.deepEqual(errorOf(res), {
    status: 400,
    error: 'invalid_request',
    description: 'Missing (or invalid type) string parameter hashAlgorithmOID',
  });
});

test('ECDSA signatures are DER by default and verify against the certificate', TIMEOUT, async () => {
  const sad = await sadFor(fx.sandbox, fujiToken, 'fuji-eseal-ec', { numSignatures: 2 });
  const messages = ['receipt-1', 'receipt-2'];
  const res = await signHash(fx.sandbox, fujiToken, {
    credentialID: 'fuji-eseal-ec',
    SAD: sad,
    hashes: messages.map((m) => b64(digestOf(m))),
    hashAlgorithmOID: SHA256_OID,
    signAlgo: ECDSA_SHA256_OID,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const cert = await leafCertificate(fx.sandbox, fujiToken, 'fuji-eseal-ec');
  (res.body.signatures as string[]).forEach((s, i) => {
    const sig = Buffer.from(s, 'base64');
    assert.equal(sig[0], 0x30, 'DER SEQUENCE');
    assert.ok(verify('sha256', Buffer.from(messages[i]!), { key: cert.publicKey, dsaEncoding: 'der' }, sig));
  });
  assert.equal(fx.sandbox.stats().signatures >= 2, true);
});

test('with ecdsaSignatureFormat raw, ECDSA signatures are 64-byte r||s that verify', TIMEOUT, async () => {
  // A second sandbox on the same dataDir: same keys, raw output.
  const raw = await startFixture({ ecdsaSignatureFormat: 'raw' }, dataDir);
  try {
    const token = await getToken(raw.sandbox, 'fuji-app');
    const sad = await sadFor(raw.sandbox, token, 'fuji-eseal-ec');
    const res = await signHash(raw.sandbox, token, {
      credentialID: 'fuji-eseal-ec',
      SAD: sad,
      hashes: [b64(digestOf('raw-1'))],
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const sig = Buffer.from((res.body.signatures as string[])[0]!, 'base64');
    assert.equal(sig.length, 64);
    const cert = await leafCertificate(raw.sandbox, token, 'fuji-eseal-ec');
    assert.ok(
      verify('sha256', Buffer.from('raw-1'), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
    );
  } finally {
    await raw.close();
  }
});

test(
  'a SAD is spent after numSignatures, and never partially spent by an over-large call',
  TIMEOUT,
  async () => {
    const sad = await sadFor(fx.sandbox, fujiToken, 'fuji-eseal-ec', { numSignatures: 3 });
    const call = (n: number) =>
      signHash(fx.sandbox, fujiToken, {
        credentialID: 'fuji-eseal-ec',
        SAD: sad,
        hashes: Array.from({ length: n }, (_, i) => b64(digestOf(`spend-${n}-${i}`))),
        signAlgo: ECDSA_SHA256_OID,
      });
    assert.equal((await call(2)).status, 200);
    const over = await call(2); // only 1 left: refused whole
    assert.equal(over.status, 400);
    assert.match(
      String(over.body.error_description),
      /^Invalid parameter hashes: 2 hashes exceed the 1 signatures left/,
    );
    assert.equal((await call(1)).status, 200); // the refused call spent nothing
    const spent = await call(1);
    assert.equal(spent.status, 400);
    assert.equal(spent.body.error, 'invalid_request');
    assert.match(
      String(spent.body.error_description),
      /^Invalid parameter SAD: all 3 authorised signatures have been used/,
    );
  },
);

test('a SAD expires after sadLifetimeSec', TIMEOUT, async () => {
  // On a ManualClock the SAD's life ends when the test says, however slow the machine.
  const clock = new ManualClock();
  const short = await startFixture({ sadLifetimeSec: 0.3, clock }, dataDir);
  try {
    const token = await getToken(short.sandbox, 'fuji-app');
    // Three signatures: one is left when it expires, so only its age can be the reason for the refusal.
    const res = await authorize(short.sandbox, token, credential(short.sandbox, 'fuji-eseal-ec'), {
      numSignatures: 3,
    });
    assert.equal(res.body.expiresIn, 1);
    const body = {
      credentialID: 'fuji-eseal-ec',
      SAD: res.body.SAD,
      hashes: [b64(digestOf('exp'))],
      signAlgo: ECDSA_SHA256_OID,
    };
    assert.equal((await signHash(short.sandbox, token, body)).status, 200);
    clock.advance(299); // its last millisecond: the second signature is still granted
    assert.equal((await signHash(short.sandbox, token, body)).status, 200);
    clock.advance(1);
    assert.deepEqual(errorOf(await signHash(short.sandbox, token, body)), {
      status: 400,
      error: 'invalid_request',
      description: 'SAD expired',
    });
  } finally {
    await short.close();
  }
});

test('SCAL2: a hash not bound to the SAD is refused, the bound hashes are signed', TIMEOUT, async () => {
  const bound = [digestOf('scal2-a'), digestOf('scal2-b')];
  const sad = await sadFor(fx.sandbox, fujiToken, 'fuji-eseal-ec-scal2', {
    numSignatures: 2,
    hashes: bound.map(b64),
    hashAlgorithmOID: SHA256_OID,
  });
  const base = { credentialID: 'fuji-eseal-ec-scal2', SAD: sad, signAlgo: ECDSA_SHA256_OID };
  const unbound = await signHash(fx.sandbox, fujiToken, {
    ...base,
    hashes: [b64(bound[0]!), b64(digestOf('other'))],
  });
  assert.deepEqual(errorOf(unbound), {
    status: 400,
    error: 'invalid_request',
    description: 'Hash is not authorized by the SAD (hashes[1])',
  });
  const ok = await signHash(fx.sandbox, fujiToken, { ...base, hashes: [b64(bound[1]!), b64(bound[0]!)] });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const cert = await leafCertificate(fx.sandbox, fujiToken, 'fuji-eseal-ec-scal2');
  const [sigB, sigA] = (ok.body.signatures as string[]).map((s) => Buffer.from(s, 'base64'));
  assert.ok(verify('sha256', Buffer.from('scal2-b'), { key: cert.publicKey, dsaEncoding: 'der' }, sigB!));
  assert.ok(verify('sha256', Buffer.from('scal2-a'), { key: cert.publicKey, dsaEncoding: 'der' }, sigA!));
});

test(
  "a SAD of another credential, a foreign client's SAD and an unknown SAD are refused",
  TIMEOUT,
  async () => {
    const sad = await sadFor(fx.sandbox, fujiToken, 'fuji-eseal-ec');
    const hashes = [b64(digestOf('foreign'))];
    const otherCred = await signHash(fx.sandbox, fujiToken, {
      credentialID: 'fuji-eseal-ec-scal2',
      SAD: sad,
      hashes,
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.equal(otherCred.status, 400);
    assert.match(String(otherCred.body.error_description), /^Invalid parameter SAD/);

    const sakuraSad = await sadFor(fx.sandbox, sakuraToken, 'sakura-eseal-rsa');
    const foreign = await signHash(fx.sandbox, fujiToken, {
      credentialID: 'fuji-eseal-ec',
      SAD: sakuraSad,
      hashes,
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.deepEqual(errorOf(foreign), {
      status: 400,
      error: 'invalid_request',
      description: 'Invalid parameter SAD',
    });
    const unknown = await signHash(fx.sandbox, fujiToken, {
      credentialID: 'fuji-eseal-ec',
      SAD: 'made-up',
      hashes,
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.deepEqual(errorOf(unknown), {
      status: 400,
      error: 'invalid_request',
      description: 'Invalid parameter SAD',
    });
  },
);

test(
  'a signAlgo that does not match the key, a short hash and too many hashes are refused',
  TIMEOUT,
  async () => {
    const sad = await sadFor(fx.sandbox, fujiToken, 'fuji-eseal-ec', { numSignatures: 10 });
    const base = { credentialID: 'fuji-eseal-ec', SAD: sad };
    const rsaOnEc = await signHash(fx.sandbox, fujiToken, {
      ...base,
      hashes: [b64(digestOf('a'))],
      hashAlgorithmOID: SHA256_OID,
      signAlgo: RSA_OID,
    });
    assert.equal(rsaOnEc.status, 400);
    assert.match(String(rsaOnEc.body.error_description), /^Invalid parameter signAlgo/);

    const short = await signHash(fx.sandbox, fujiToken, {
      ...base,
      hashes: [b64(Buffer.alloc(20, 1))],
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.equal(
      short.body.error_description,
      'Invalid digest value length (hashes[0] is 20 bytes, expected 32)',
    );

    const notBase64 = await signHash(fx.sandbox, fujiToken, {
      ...base,
      hashes: ['%%%'],
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.match(
      String(notBase64.body.error_description),
      /^Invalid Base64 hash string parameter hashes\[0\]/,
    );

    // maxHashesPerCall is 5 in this file.
    const six = Array.from({ length: 6 }, (_, i) => b64(digestOf(`six-${i}`)));
    const tooMany = await signHash(fx.sandbox, fujiToken, {
      ...base,
      hashes: six,
      signAlgo: ECDSA_SHA256_OID,
    });
    assert.equal(tooMany.status, 400);
    assert.match(String(tooMany.body.error_description), /exceed the limit of 5 per call/);

    const empty = await signHash(fx.sandbox, fujiToken, { ...base, hashes: [], signAlgo: ECDSA_SHA256_OID });
    assert.equal(empty.body.error_description, 'Empty hash array hashes');
    // None of these refusals spent a signature: all 10 remain (5 + 5, each within the per-call limit).
    for (const batch of [six.slice(0, 5), six.slice(0, 5)]) {
      assert.equal(
        (await signHash(fx.sandbox, fujiToken, { ...base, hashes: batch, signAlgo: ECDSA_SHA256_OID }))
          .status,
        200,
      );
    }
  },
);
