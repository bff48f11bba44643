// signing.clientId is needed only where an OAuth2 client ID is sent: serviceAuth client_credentials and
// custody approval via oauth2code (the provider page's authorization code flow). A static bearer token
// or auth/login needs none; a job without one still gets a signing context of its own, under a stable
// key that no clientId value can collide with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobFile, type JobDefinition } from '../../src/jobs';
import { SigningContexts } from '../../src/queue/signing-contexts';
import { tempDir } from '../helpers/temp-dir';

const base = {
  name: 'acme-nightly',
  cron: '0 2 * * *',
  tenant: 'acme',
  export: {
    folder: 'inbox',
    columns: { invoiceNumber: 'no', customerName: 'name', amount: 'amount', pdfPath: 'pdf' },
  },
  outbox: 'outbox',
};

async function load(dir: string, signing: Record<string, unknown>): Promise<JobDefinition> {
  const file = path.join(dir, `job-${Math.random().toString(36).slice(2)}.json`);
  await fs.writeFile(file, JSON.stringify({ ...base, signing: { credentialId: 'acme-cred', ...signing } }));
  return loadJobFile(file);
}

async function refused(dir: string, signing: Record<string, unknown>): Promise<string> {
  const err = await load(dir, signing).then(
    () => assert.fail('expected the job to be refused'),
    (e: unknown) => e as Error,
  );
  return err.message;
}

test('bearer and auth/login service auth load without a clientId', { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const bearer = await load(dir, {
    serviceAuth: { method: 'bearer', token: 'env:ACME_TOKEN' },
    pin: 'env:ACME_PIN',
  });
  assert.equal(bearer.signing.clientId, undefined);
  const basic = await load(dir, {
    serviceAuth: { method: 'basic', username: 'acme', password: 'env:ACME_PASSWORD' },
    custody: { mode: 'approval', via: 'prompt' },
  });
  assert.equal(basic.signing.clientId, undefined);
});

test(
  'client_credentials and approval via oauth2code without a clientId are refused, naming the field and why',
  { timeout: 120_000 },
  async () => {
    const dir = await tempDir();
    const noClientCredentials = await refused(dir, { clientSecret: 'env:ACME_SECRET' });
    assert.match(noClientCredentials, /signing\.clientId: required for serviceAuth client_credentials/);

    const noPageApproval = await refused(dir, {
      serviceAuth: { method: 'bearer', token: 'env:ACME_TOKEN' },
      clientSecret: 'env:ACME_SECRET',
      custody: { mode: 'approval', via: 'oauth2code' },
    });
    assert.match(noPageApproval, /signing\.clientId: required for custody approval via oauth2code/);

    // With the ID both load.
    const ok = await load(dir, { clientId: 'acme-app', clientSecret: 'env:ACME_SECRET' });
    assert.equal(ok.signing.clientId, 'acme-app');
  },
);

test(
  'a job without a clientId gets its own signing context, apart from one whose clientId is "undefined"',
  { timeout: 120_000 },
  async () => {
    const dir = await tempDir();
    const signing = {
      providerUrl: 'http://127.0.0.1:9/csc/v2',
      serviceAuth: { method: 'bearer', token: 'env:SIGNING_CLIENT_ID_TEST_NO_SUCH_VAR' },
      pin: 'env:ACME_PIN',
    };
    const withoutId = await load(dir, signing);
    const again = await load(dir, signing);
    const literal = await load(dir, { ...signing, clientId: 'undefined' });
    const contexts = new SigningContexts({ logger: pino({ level: 'silent' }), env: {} });
    // get() caches the context's promise per key until it settles: the same key gives the same promise.
    const a = contexts.get(withoutId);
    const b = contexts.get(again);
    const c = contexts.get(literal);
    const settled = await Promise.allSettled([a, b, c]);
    assert.equal(a, b, 'two jobs without a clientId (same provider, tenant, credential) share one context');
    assert.notEqual(a, c, 'a clientId of "undefined" is another client');
    // The bearer token's reference does not resolve here: each context fails to be made, naming it.
    for (const s of settled) {
      assert.equal(s.status, 'rejected');
      assert.match(String((s as PromiseRejectedResult).reason), /SIGNING_CLIENT_ID_TEST_NO_SUCH_VAR/);
    }
  },
);
