// credentials/info asks for what parseCredentialInfo reads and nothing more: the chain and the
// authorisation details, never `certInfo` (OPTIONAL in CSC v1.0.4 section 11.5 and v2; some providers
// answer it with 501). The stub provider here is one of those: it refuses certInfo with 501, so a
// client that asked for it could not learn the credential at all. The serial number comes from the
// certificate itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CscClient, OID, type CscApiVersion } from '../../src/csc';
import { createTestPki, type TestPki } from '../helpers/test-pki';

let pki: TestPki;
let server: http.Server;
let origin: string;
const bodies: Record<string, unknown>[] = [];

before(async () => {
  pki = await createTestPki();
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (url.endsWith('/info') && !url.includes('credentials')) {
        return reply(200, { specs: '2.0.0.2', authType: ['oauth2client'], methods: [] });
      }
      if (url === '/oauth2/token') return reply(200, { access_token: 't', token_type: 'Bearer' });
      if (url.endsWith('/credentials/info')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        bodies.push(body);
        if (body.certInfo !== undefined) {
          return reply(501, { error: 'not_implemented', error_description: 'certInfo is not supported' });
        }
        return reply(200, {
          key: { status: 'enabled', algo: [OID.ecdsaWithSHA256], len: 256 },
          cert: { status: 'valid', certificates: pki.ecdsa.chainDer.map((d) => d.toString('base64')) },
          auth: {
            mode: 'explicit',
            expression: 'PIN AND OTP',
            objects: [
              { type: 'Password', id: 'PIN', format: 'N' },
              { type: 'Password', id: 'OTP', format: 'N', generator: 'totp' },
            ],
          },
          // v1.0.4 spelling of the same, as a v1 provider sends it with authInfo.
          authMode: 'explicit',
          SCAL: '1',
          multisign: 100,
        });
      }
      reply(404, {});
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await pki.cleanup();
});

function client(apiVersion: CscApiVersion): CscClient {
  return new CscClient({
    baseUrl: `${origin}/csc/${apiVersion}`,
    apiVersion,
    auth: { kind: 'client_credentials', clientId: 'c', clientSecret: 's' },
    timeoutMs: 2000,
  });
}

for (const apiVersion of ['v2', 'v1'] as const) {
  test(
    `${apiVersion}: credentials/info sends credentialID, certificates "chain" and authInfo only`,
    { timeout: 120_000 },
    async () => {
      bodies.length = 0;
      const facts = await client(apiVersion).credentialInfo('cred-ec');
      assert.deepEqual(bodies, [{ credentialID: 'cred-ec', certificates: 'chain', authInfo: true }]);

      // What certInfo would have given is read from the certificate instead.
      const leaf = new X509Certificate(pki.ecdsa.certDer);
      assert.equal(facts.certificateSerialHex, leaf.serialNumber.toUpperCase().replace(/^0+(?=.)/, ''));
      assert.equal(facts.certificates.length, 2);
      assert.equal(facts.keyAlgorithm, 'ecdsa');
      assert.equal(facts.ecCurve, 'prime256v1');
      assert.deepEqual(facts.factors, ['PIN', 'OTP']);
      assert.equal(facts.multisign, 100);
    },
  );
}
