import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as pkijs from 'pkijs';
import {
  buildTimeStampReq,
  checkTimestampToken,
  newNonce,
  readTimeStampResp,
  TimestampError,
} from '../../src/pades';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { createOpensslTsa, OpensslTsa, TSA_OTHER_POLICY, TSA_POLICY } from './tsa-fixture';

let tsa: OpensslTsa;
before(async () => {
  tsa = await createOpensslTsa();
});
after(() => tsa.cleanup());

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

async function stamp(opts: { policyOid?: string; certReq?: boolean; essCertIdV1?: boolean } = {}) {
  const digest = sha256(randomBytes(64));
  const nonce = newNonce();
  const query = buildTimeStampReq({
    digest,
    nonce,
    certReq: opts.certReq ?? true,
    ...(opts.policyOid ? { policyOid: opts.policyOid } : {}),
  });
  const { tokenDer } = readTimeStampResp(await tsa.reply(query, { essCertIdV1: opts.essCertIdV1 ?? false }));
  return { digest, nonce, tokenDer };
}

function assertInvalid(fn: () => unknown, reason: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TimestampError, `a TimestampError, got ${String(err)}`);
    assert.equal(err.kind, 'invalid');
    assert.match(err.message, reason);
    return true;
  });
}

async function opensslTsVerify(tokenDer: Buffer, digest: Buffer, name: string): Promise<string> {
  const file = path.join(tsa.dir, `${name}.der`);
  await fs.writeFile(file, tokenDer);
  return tsa.openssl([
    'ts', '-verify', '-token_in', '-in', file, '-digest', digest.toString('hex'), '-CAfile', tsa.rootPemPath,
  ]); // prettier-ignore
}

test(
  'buildTimeStampReq writes what openssl ts reads: SHA-256 imprint, nonce, policy, certReq',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const digest = sha256(Buffer.from('stamp me'));
    const nonce = Buffer.from('c0ffee0000000000000001', 'hex'); // top bit set: needs a zero byte
    const query = buildTimeStampReq({ digest, nonce, policyOid: TSA_POLICY, certReq: true });
    const file = path.join(tsa.dir, 'query.der');
    await fs.writeFile(file, query);
    const text = await tsa.openssl(['ts', '-query', '-in', file, '-text']);
    assert.match(text, /Hash Algorithm: sha256/);
    // openssl dumps the imprint as "0000 - ab ab ...-ab ...   ascii" lines.
    const dumped = [...text.matchAll(/^\s+[0-9a-f]{4} - ([0-9a-f -]+?)\s{2,}/gm)]
      .map((m) => m[1]!.replace(/[ -]/g, ''))
      .join('');
    assert.equal(dumped, digest.toString('hex'));
    assert.match(text, new RegExp(`Policy OID: ${TSA_POLICY.replace(/\./g, '\\.')}`));
    assert.match(text, /Nonce: 0xC0FFEE0000000000000001/i);
    assert.match(text, /Certificate required: yes/);
    assert.throws(() => buildTimeStampReq({ digest: Buffer.alloc(20), nonce, certReq: true }), /32-byte/);
    assert.throws(() => buildTimeStampReq({ digest, nonce: Buffer.alloc(8), certReq: true }), /non-zero/);
  },
);

test(
  'a good openssl reply passes, with its facts; openssl ts -verify agrees',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const before = Date.now();
    const { digest, nonce, tokenDer } = await stamp({ policyOid: TSA_OTHER_POLICY });
    const token = checkTimestampToken(tokenDer, {
      digest,
      nonce,
      policyOid: TSA_OTHER_POLICY,
      trustedRootsDer: [tsa.rootDer],
    });
    assert.ok(token.der.equals(tokenDer));
    assert.ok(token.imprintDigest.equals(digest));
    assert.equal(token.policyOid, TSA_OTHER_POLICY);
    assert.ok(token.tsaCertificateDer.equals(tsa.tsaDer), 'signer is the TSA certificate');
    assert.ok(
      token.certificatesDer.some((c) => c.equals(tsa.rootDer)),
      'openssl added the certs file',
    );
    assert.match(token.serialHex, /^[0-9a-f]+$/);
    assert.ok(Math.abs(token.genTime.getTime() - before) < 60_000, `genTime ${token.genTime.toISOString()}`);
    assert.match(await opensslTsVerify(tokenDer, digest, 'good'), /Verification: OK/);
  },
);

test(
  'a token over another digest is refused as the wrong imprint',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { nonce, tokenDer } = await stamp();
    assertInvalid(
      () =>
        checkTimestampToken(tokenDer, {
          digest: sha256(Buffer.from('other')),
          nonce,
          trustedRootsDer: [tsa.rootDer],
        }),
      /message imprint [0-9a-f]{64} is not the digest sent/,
    );
  },
);

test('a token echoing another nonce is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { digest, tokenDer } = await stamp();
  assertInvalid(
    () => checkTimestampToken(tokenDer, { digest, nonce: newNonce(), trustedRootsDer: [tsa.rootDer] }),
    /nonce [0-9a-f]+ is not the nonce sent/,
  );
});

test(
  'a token under another policy than the one asked for is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { digest, nonce, tokenDer } = await stamp(); // the TSA's default policy
    assertInvalid(
      () =>
        checkTimestampToken(tokenDer, {
          digest,
          nonce,
          policyOid: TSA_OTHER_POLICY,
          trustedRootsDer: [tsa.rootDer],
        }),
      new RegExp(`policy ${TSA_POLICY.replace(/\./g, '\\.')} is not the policy asked for`),
    );
  },
);

test(
  'a rejection status is a refusal naming the status, the TSA text and failInfo',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const query = buildTimeStampReq({
      digest: sha256(Buffer.from('x')),
      nonce: newNonce(),
      policyOid: '1.2.3.4.5',
      certReq: true,
    });
    const reply = await tsa.reply(query);
    assert.throws(
      () => readTimeStampResp(reply),
      (err: unknown) => {
        assert.ok(err instanceof TimestampError);
        assert.equal(err.kind, 'refused');
        assert.match(err.message, /rejection/);
        assert.match(err.message, /policy is not supported/i);
        assert.match(err.message, /failInfo unacceptedPolicy/);
        return true;
      },
    );
    assert.throws(() => readTimeStampResp(Buffer.from('<html>busy</html>')), /not a DER TimeStampResp/);
  },
);

test(
  'a TSA certificate whose timeStamping EKU is not critical is refused (openssl ts -verify refuses it too)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { digest, nonce, tokenDer } = await stamp();
    const good = new pkijs.SignedData({
      schema: pkijs.ContentInfo.fromBER(new Uint8Array(tokenDer)).content,
    });
    const tstInfoDer = Buffer.from(good.encapContentInfo.eContent!.getValue());
    const bad = await tsa.signWithNonCriticalEkuTsa(tstInfoDer);
    assertInvalid(
      () => checkTimestampToken(bad, { digest, nonce, trustedRootsDer: [tsa.rootDer] }),
      /extended key usage timeStamping is not marked critical/,
    );
    await assert.rejects(opensslTsVerify(bad, digest, 'noncritical'));
  },
);

test('a TSA that chains to a root nobody trusts is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { digest, nonce, tokenDer } = await stamp();
  assertInvalid(
    () => checkTimestampToken(tokenDer, { digest, nonce, trustedRootsDer: [tsa.otherRootDer] }),
    /does not chain to a trusted root: .*Sealer Test TSA.* was not issued by a trusted root/,
  );
});

test(
  'a token altered in transit, or dated ahead of the local clock, is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { digest, nonce, tokenDer } = await stamp();
    const altered = Buffer.from(tokenDer);
    altered[altered.length - 1]! ^= 0x01; // the last byte is the RSA signature's
    assertInvalid(
      () => checkTimestampToken(altered, { digest, nonce, trustedRootsDer: [tsa.rootDer] }),
      /signature does not verify/,
    );
    assertInvalid(
      () =>
        checkTimestampToken(tokenDer, {
          digest,
          nonce,
          trustedRootsDer: [tsa.rootDer],
          now: new Date(Date.now() - 3600_000),
        }),
      /genTime .* is ahead of the local clock/,
    );
    assertInvalid(
      () => checkTimestampToken(Buffer.from('3003020101', 'hex'), { digest, trustedRootsDer: [tsa.rootDer] }),
      /not a DER ContentInfo/,
    );
  },
);

test(
  'without certReq the TSA certificate must come from extraCertsDer',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { digest, nonce, tokenDer } = await stamp({ certReq: false });
    assertInvalid(
      () => checkTimestampToken(tokenDer, { digest, nonce, trustedRootsDer: [tsa.rootDer] }),
      /TSA certificate is neither in the token nor among the extra certificates/,
    );
    const token = checkTimestampToken(tokenDer, {
      digest,
      nonce,
      trustedRootsDer: [tsa.rootDer],
      extraCertsDer: [tsa.tsaDer],
    });
    assert.ok(token.tsaCertificateDer.equals(tsa.tsaDer));
    assert.deepEqual(token.certificatesDer, []);
  },
);

test(
  'a token naming its TSA with the older ESSCertID (SHA-1) passes too',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { digest, nonce, tokenDer } = await stamp({ essCertIdV1: true });
    const file = path.join(tsa.dir, 'ess-v1.der');
    await fs.writeFile(file, tokenDer);
    const printed = await tsa.openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file]);
    assert.match(
      printed,
      /object: id-smime-aa-signingCertificate \(1\.2\.840\.113549\.1\.9\.16\.2\.12\)/,
      'openssl sees ESSCertID v1',
    );
    assert.doesNotMatch(printed, /signingCertificateV2/);
    const token = checkTimestampToken(tokenDer, { digest, nonce, trustedRootsDer: [tsa.rootDer] });
    assert.ok(token.tsaCertificateDer.equals(tsa.tsaDer));
  },
);
