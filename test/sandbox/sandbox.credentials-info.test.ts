// credentials/list and credentials/info: the CSC v2 shape, a certificate chain that parses and
// verifies with OpenSSL, the e-seal subject and key usage, and tenant isolation.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { authorize, credential, csc, errorOf, getToken, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

interface CredentialInfoBody {
  key: { status: string; algo: string[]; len: number; curve?: string };
  cert: {
    status: string;
    certificates?: string[];
    serialNumber?: string;
    subjectDN?: string;
    issuerDN?: string;
    validFrom?: string;
    validTo?: string;
  };
  authMode: string;
  auth: { mode: string; expression?: string; objects?: Array<Record<string, unknown>> };
  SCAL: string;
  multisign: number;
}

let fx: Fixture;
let fujiToken: string;
let sakuraToken: string;

before(async () => {
  fx = await startFixture();
  fujiToken = await getToken(fx.sandbox, 'fuji-app');
  sakuraToken = await getToken(fx.sandbox, 'sakura-app');
});
after(async () => fx.close());

test(
  'credentials/info with chain, certInfo and authInfo has the CSC v2 shape',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const res = await csc(fx.sandbox, 'credentials/info', fujiToken, {
      credentialID: 'fuji-eseal-ec-scal2',
      certificates: 'chain',
      certInfo: true,
      authInfo: true,
    });
    assert.equal(res.status, 200);
    const body = res.body as unknown as CredentialInfoBody;
    assert.deepEqual(body.key, {
      status: 'enabled',
      algo: ['1.2.840.10045.4.3.2'],
      len: 256,
      curve: '1.2.840.10045.3.1.7',
    });
    assert.equal(body.SCAL, '2');
    assert.equal(body.multisign, 500);
    assert.equal(body.authMode, 'explicit');
    assert.equal(body.auth.mode, 'explicit');
    assert.equal(body.auth.expression, 'PIN AND OTP');
    assert.deepEqual(
      body.auth.objects?.map((o) => [o.type, o.id, o.format, o.generator]),
      [
        ['Password', 'PIN', 'N', undefined],
        ['Password', 'OTP', 'N', 'totp'],
      ],
    );
    assert.equal(body.cert.status, 'valid');
    assert.equal(body.cert.certificates?.length, 2);
    assert.equal(body.cert.serialNumber, credential(fx.sandbox, 'fuji-eseal-ec-scal2').certificateSerialHex);
    assert.match(String(body.cert.validFrom), /^\d{14}Z$/);
    assert.match(String(body.cert.validTo), /^\d{14}Z$/);
    assert.match(
      String(body.cert.subjectDN),
      /^CN=Fuji Denki K\.K\. e-Seal,organizationIdentifier=NTRJP-\d{13},O=Fuji Denki K\.K\.,C=JP$/,
    );
    assert.equal(body.cert.issuerDN, 'CN=Sealer Sandbox Root CA,O=Sealer Sandbox,C=JP');

    const [leaf, root] = (body.cert.certificates ?? []).map(
      (c) => new X509Certificate(Buffer.from(c, 'base64')),
    );
    assert.ok(leaf && root);
    assert.equal(root.toString(), new X509Certificate(fx.sandbox.rootCertPem).toString());
    assert.ok(leaf.checkIssued(root));
    assert.ok(leaf.verify(root.publicKey));
    assert.equal(leaf.serialNumber.toUpperCase(), body.cert.serialNumber);
    assert.equal(leaf.ca, false);
    assert.equal(root.ca, true);
    assert.match(leaf.subject, /2\.5\.4\.97=NTRJP-|organizationIdentifier=NTRJP-/);

    // keyUsage is critical digitalSignature + nonRepudiation: ask OpenSSL, not our own code.
    const leafPem = path.join(fx.dataDir, 'leaf-under-test.pem');
    await writeFile(leafPem, leaf.toString());
    const text = execFileSync('openssl', ['x509', '-in', leafPem, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Non Repudiation/);
    const verify = execFileSync('openssl', ['verify', '-CAfile', fx.sandbox.rootCertPath, leafPem], {
      encoding: 'utf8',
    });
    assert.match(verify, /: OK/);
  },
);

test(
  'credentials/info defaults to the single leaf certificate and no details',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const res = await csc(fx.sandbox, 'credentials/info', sakuraToken, { credentialID: 'sakura-eseal-rsa' });
    assert.equal(res.status, 200);
    const body = res.body as unknown as CredentialInfoBody;
    assert.deepEqual(body.key.algo, ['1.2.840.113549.1.1.1', '1.2.840.113549.1.1.11']);
    assert.equal(body.key.len, 2048);
    assert.equal(body.key.curve, undefined);
    assert.equal(body.cert.certificates?.length, 1);
    assert.equal(body.cert.subjectDN, undefined);
    assert.deepEqual(body.auth, { mode: 'explicit' });
    assert.equal(body.SCAL, '1');

    const none = await csc(fx.sandbox, 'credentials/info', sakuraToken, {
      credentialID: 'sakura-eseal-rsa',
      certificates: 'none',
    });
    assert.equal((none.body as unknown as CredentialInfoBody).cert.certificates, undefined);
    const bad = await csc(fx.sandbox, 'credentials/info', sakuraToken, {
      credentialID: 'sakura-eseal-rsa',
      certificates: 'all',
    });
    assert.deepEqual(errorOf(bad), {
      status: 400,
      error: 'invalid_request',
      description: 'Invalid parameter certificates',
    });
  },
);

test(
  'credentials/list returns only the caller tenant credentials, with infos on request',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fuji = await csc(fx.sandbox, 'credentials/list', fujiToken, {
      credentialInfo: true,
      certificates: 'none',
    });
    assert.equal(fuji.status, 200);
    assert.deepEqual(fuji.body.credentialIDs, ['fuji-eseal-ec', 'fuji-eseal-ec-scal2']);
    const infos = fuji.body.credentialInfos as Array<Record<string, unknown>>;
    assert.deepEqual(
      infos.map((i) => [i.credentialID, i.SCAL]),
      [
        ['fuji-eseal-ec', '1'],
        ['fuji-eseal-ec-scal2', '2'],
      ],
    );
    const sakura = await csc(fx.sandbox, 'credentials/list', sakuraToken, {});
    assert.deepEqual(sakura.body, { credentialIDs: ['sakura-eseal-rsa', 'sakura-eseal-implicit'] });
  },
);

test(
  "another tenant's credential is refused as an invalid credentialID by info, authorize and signHash",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const expected = { status: 400, error: 'invalid_request', description: 'Invalid parameter credentialID' };
    const info = await csc(fx.sandbox, 'credentials/info', sakuraToken, { credentialID: 'fuji-eseal-ec' });
    assert.deepEqual(errorOf(info), expected);
    const auth = await authorize(fx.sandbox, sakuraToken, credential(fx.sandbox, 'fuji-eseal-ec'));
    assert.deepEqual(errorOf(auth), expected);
    const sign = await csc(fx.sandbox, 'signatures/signHash', sakuraToken, {
      credentialID: 'fuji-eseal-ec',
      SAD: 'x',
      hashes: [Buffer.alloc(32).toString('base64')],
      signAlgo: '1.2.840.10045.4.3.2',
    });
    assert.deepEqual(errorOf(sign), expected);
    // An unknown ID reads exactly the same, so existence elsewhere is not revealed.
    const unknown = await csc(fx.sandbox, 'credentials/info', sakuraToken, {
      credentialID: 'no-such-credential',
    });
    assert.deepEqual(errorOf(unknown), expected);
  },
);
