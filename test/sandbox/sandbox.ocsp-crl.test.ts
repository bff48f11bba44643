// The sandbox's revocation services, checked with `openssl ocsp` and `openssl crl`: issued certificates
// name the OCSP responder and the CRL (one credential the CRL only), OCSP says good / revoked / unknown
// with a verified, root-signed answer and the nonce echoed, the CRL verifies and lists revocations, and
// `sealer sandbox revoke` (another process) and restarts on other ports agree with the running sandbox.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { csc, getToken, makeDataDir, startFixture, type Fixture } from './sandbox-fixture';

const execFileP = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The credential's leaf certificate as credentials/info gives it, written as PEM. */
async function leafPem(fx: Fixture, dir: string, clientId: string, credentialId: string): Promise<string> {
  const token = await getToken(fx.sandbox, clientId);
  const info = await csc(fx.sandbox, 'credentials/info', token, { credentialID: credentialId });
  const der = (info.body.cert as { certificates: string[] }).certificates[0]!;
  const file = path.join(dir, `${credentialId}-${Date.now()}.pem`);
  const lines = der.match(/.{1,64}/g)!.join('\n');
  await writeFile(file, `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`);
  return file;
}

async function ocsp(fx: Fixture, certFile: string, extra: string[] = []) {
  return run('openssl', [
    'ocsp',
    '-issuer',
    fx.sandbox.rootCertPath,
    '-cert',
    certFile,
    '-url',
    fx.sandbox.ocspUrl,
    '-CAfile',
    fx.sandbox.rootCertPath,
    ...extra,
  ]);
}

test(
  'issued certificates name the OCSP responder and the CRL; sakura-eseal-implicit names the CRL only',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      for (const [clientId, id, hasOcsp] of [
        ['sakura-app', 'sakura-eseal-rsa', true],
        ['sakura-app', 'sakura-eseal-implicit', false],
        ['fuji-app', 'fuji-eseal-ec', true],
        ['fuji-app', 'fuji-eseal-ec-scal2', true],
      ] as const) {
        const text = (
          await run('openssl', ['x509', '-in', await leafPem(fx, dir, clientId, id), '-noout', '-text'])
        ).out;
        assert.match(
          text,
          new RegExp(`X509v3 CRL Distribution Points:[\\s\\S]*URI:${fx.sandbox.crlUrl}`),
          id,
        );
        assert.match(text, new RegExp(`CA Issuers - URI:${fx.sandbox.oauth2Url}/ca/root.cer`), id);
        assert.equal(text.includes(`OCSP - URI:${fx.sandbox.ocspUrl}`), hasOcsp, id);
      }
      // The caIssuers URL serves the root (DER).
      const root = await fetch(`${fx.sandbox.oauth2Url}/ca/root.cer`);
      assert.equal(root.headers.get('content-type'), 'application/pkix-cert');
      const rootFile = path.join(dir, 'root.cer');
      await writeFile(rootFile, Buffer.from(await root.arrayBuffer()));
      const a = (await run('openssl', ['x509', '-inform', 'DER', '-in', rootFile, '-noout', '-fingerprint']))
        .out;
      const b = (await run('openssl', ['x509', '-in', fx.sandbox.rootCertPath, '-noout', '-fingerprint']))
        .out;
      assert.equal(a, b);
    } finally {
      await fx.close();
    }
  },
);

test(
  'OCSP: good, then revoked with time and reason after revoke(); unknown serials; verified and nonce echoed',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const cert = await leafPem(fx, dir, 'fuji-app', 'fuji-eseal-ec');
      const good = await ocsp(fx, cert);
      assert.equal(good.code, 0, good.out);
      assert.match(good.out, /Response verify OK/);
      assert.match(good.out, /: good\n/);
      assert.doesNotMatch(good.out, /nonce/i, 'openssl warns when the nonce is missing or differs');
      assert.match(good.out, /This Update: .+\n\s*Next Update: .+/);

      const at = new Date(Date.UTC(2026, 10, 30, 12, 0, 0));
      const serial = fx.sandbox.revoke('fuji-eseal-ec', 'keyCompromise', at);
      assert.equal(
        serial,
        fx.sandbox.credentials.find((c) => c.credentialId === 'fuji-eseal-ec')!.certificateSerialHex,
      );
      const revoked = await ocsp(fx, cert);
      assert.match(revoked.out, /Response verify OK/);
      assert.match(revoked.out, /: revoked\n/);
      assert.match(revoked.out, /Reason: keyCompromise/);
      assert.match(revoked.out, /Revocation Time: Nov 30 12:00:00 2026 GMT/);
      // credentials/info says so too (CSC cert/status), and onlyValid leaves it out.
      const token = await getToken(fx.sandbox, 'fuji-app');
      const info = await csc(fx.sandbox, 'credentials/info', token, { credentialID: 'fuji-eseal-ec' });
      assert.equal((info.body.cert as { status: string }).status, 'revoked');
      const list = await csc(fx.sandbox, 'credentials/list', token, { onlyValid: true });
      assert.deepEqual(list.body.credentialIDs, ['fuji-eseal-ec-scal2']);
      // Others stay good.
      assert.match(
        (await ocsp(fx, await leafPem(fx, dir, 'fuji-app', 'fuji-eseal-ec-scal2'))).out,
        /: good\n/,
      );

      // A serial the sandbox never issued is unknown (and the answer still verifies).
      const unknown = await run('openssl', [
        'ocsp',
        '-issuer',
        fx.sandbox.rootCertPath,
        '-serial',
        '0x1234567890ABCDEF',
        '-url',
        fx.sandbox.ocspUrl,
        '-CAfile',
        fx.sandbox.rootCertPath,
      ]);
      assert.match(unknown.out, /Response verify OK/);
      assert.match(unknown.out, /0x1234567890ABCDEF: unknown/);

      // Several certificates in one request.
      const both = await ocsp(fx, cert, ['-cert', await leafPem(fx, dir, 'sakura-app', 'sakura-eseal-rsa')]);
      assert.match(both.out, /: revoked\n[\s\S]*: good\n/);
      assert.equal(fx.sandbox.stats().ocsp, 5);
    } finally {
      await fx.close();
    }
  },
);

test(
  'OCSP GET (RFC 6960 A.1) answers like POST; malformed requests get malformedRequest',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const cert = await leafPem(fx, dir, 'sakura-app', 'sakura-eseal-rsa');
      const reqFile = path.join(dir, 'req.der');
      const made = await run('openssl', [
        'ocsp',
        '-issuer',
        fx.sandbox.rootCertPath,
        '-cert',
        cert,
        '-no_nonce',
        '-reqout',
        reqFile,
      ]);
      assert.equal(made.code, 0, made.out);
      const b64 = (await readFile(reqFile)).toString('base64');
      const res = await fetch(`${fx.sandbox.ocspUrl}/${encodeURIComponent(b64)}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
      const respFile = path.join(dir, 'resp.der');
      await writeFile(respFile, Buffer.from(await res.arrayBuffer()));
      const read = await run('openssl', [
        'ocsp',
        '-respin',
        respFile,
        '-issuer',
        fx.sandbox.rootCertPath,
        '-cert',
        cert,
        '-CAfile',
        fx.sandbox.rootCertPath,
        '-no_nonce',
      ]);
      assert.match(read.out, /Response verify OK/);
      assert.match(read.out, /: good\n/);

      for (const body of [Buffer.from('not an OCSP request'), Buffer.alloc(0)]) {
        const bad = await fetch(fx.sandbox.ocspUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/ocsp-request' },
          body: new Uint8Array(body),
        });
        assert.equal(bad.status, 200);
        const badFile = path.join(dir, 'bad.der');
        await writeFile(badFile, Buffer.from(await bad.arrayBuffer()));
        const text = await run('openssl', ['ocsp', '-respin', badFile, '-resp_text', '-noverify']);
        assert.match(text.out, /malformedrequest \((0x)?1\)/i, text.out);
      }
    } finally {
      await fx.close();
    }
  },
);

test(
  'the CRL verifies against the root and lists revoked serials with date and reason',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const fx = await startFixture();
    try {
      const fetchCrl = async () => {
        const res = await fetch(fx.sandbox.crlUrl);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
        const file = path.join(dir, `crl-${Date.now()}-${Math.random()}.der`);
        await writeFile(file, Buffer.from(await res.arrayBuffer()));
        const verified = await run('openssl', [
          'crl',
          '-inform',
          'DER',
          '-in',
          file,
          '-CAfile',
          fx.sandbox.rootCertPath,
          '-noout',
        ]);
        assert.match(verified.out, /verify OK/);
        return (await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text'])).out;
      };
      const empty = await fetchCrl();
      assert.match(empty, /Version 2/);
      assert.match(empty, /No Revoked Certificates/);
      assert.match(empty, /X509v3 CRL Number:/);
      assert.match(empty, /Next Update: /);

      const serial = fx.sandbox.revoke('sakura-eseal-implicit', 'superseded');
      const listed = await fetchCrl();
      assert.match(
        listed,
        new RegExp(`Serial Number: ${serial}\\s*\\n\\s*Revocation Date: .+\\n[\\s\\S]*Superseded`, 'i'),
      );
      assert.equal(fx.sandbox.stats().crl, 2);
    } finally {
      await fx.close();
    }
  },
);

test(
  '`sealer sandbox revoke` in another process is seen by the running sandbox; a restart on another port keeps it revoked',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const dataDir = await makeDataDir();
    try {
      const first = await startFixture({}, dataDir);
      const oldCert = await leafPem(first, dir, 'sakura-app', 'sakura-eseal-rsa');
      try {
        assert.match((await ocsp(first, oldCert)).out, /: good\n/);
        const cli = await run(process.execPath, [
          CLI,
          'sandbox',
          'revoke',
          'sakura-eseal-rsa',
          '--data-dir',
          dataDir,
          '--reason',
          'cessationOfOperation',
        ]);
        assert.equal(cli.code, 0, cli.out);
        assert.match(cli.out, /revoked sakura-eseal-rsa: certificate serial [0-9A-F]+, cessationOfOperation/);
        assert.match((await ocsp(first, oldCert)).out, /: revoked\n[\s\S]*Reason: cessationOfOperation/);
        const bad = await run(process.execPath, [
          CLI,
          'sandbox',
          'revoke',
          'no-such-credential',
          '--data-dir',
          dataDir,
        ]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.out, /no credential no-such-credential/);
        const badReason = await run(process.execPath, [
          CLI,
          'sandbox',
          'revoke',
          'sakura-eseal-rsa',
          '--data-dir',
          dataDir,
          '--reason',
          'bored',
        ]);
        assert.notEqual(badReason.code, 0);
        assert.match(badReason.out, /--reason must be one of/);
      } finally {
        await first.close();
      }

      // Another port: certificates are re-issued for the new URLs (same key), and the revoked credential's
      // new certificate is revoked as well; the old one's status is unchanged.
      const second = await startFixture({}, dataDir);
      try {
        const newCert = await leafPem(second, dir, 'sakura-app', 'sakura-eseal-rsa');
        const text = (await run('openssl', ['x509', '-in', newCert, '-noout', '-text'])).out;
        assert.match(text, new RegExp(`OCSP - URI:${second.sandbox.ocspUrl}`));
        const key = async (f: string) => (await run('openssl', ['x509', '-in', f, '-noout', '-pubkey'])).out;
        assert.equal(await key(newCert), await key(oldCert));
        assert.match((await ocsp(second, newCert)).out, /: revoked\n[\s\S]*Reason: cessationOfOperation/);
        assert.match((await ocsp(second, oldCert)).out, /: revoked\n/);
        const other = await leafPem(second, dir, 'fuji-app', 'fuji-eseal-ec');
        assert.match((await ocsp(second, other)).out, /: good\n/);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  },
);
