// finish verifies what will be written (the input followed by the embedded update), not only the CMS
// against the digest the prepare thread took: a byte changed in the update after prepare, or an input
// that is not the one prepared, is refused before anything is returned.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CmsTemplate, digestToSign, verifySealedPdf } from '../../src/pades';
import { prepareSealUpdate, renderSampleInvoice } from '../../src/pdf';
import { LevelFinisher, SealError, type PreparedSeal } from '../../src/seal';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

async function prepared(): Promise<{
  input: Buffer;
  seal: PreparedSeal;
  finisher: LevelFinisher;
  signature: Buffer;
}> {
  const input = Buffer.from(
    await renderSampleInvoice({
      invoiceNumber: 'INV-1',
      tenantName: 'Acme K.K.',
      customerName: 'Fuji Trading',
      amount: 12_000,
      issueDate: '2026-12-01',
    }),
  );
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const finisher = new LevelFinisher({
    level: 'B-B',
    template,
    chainDer: pki.ecdsa.chainDer,
    trustRootsDer: [pki.rootCertDer],
  });
  const update = await prepareSealUpdate(input, {
    signingTime: new Date(),
    signatureBytes: finisher.signatureBytes,
  });
  const signedAttributes = template.signedAttributes(update.contentDigest);
  const hashToSign = digestToSign(signedAttributes);
  const seal: PreparedSeal = {
    inputLength: update.inputLength,
    update: update.update,
    byteRange: update.byteRange,
    contentDigest: update.contentDigest,
    signatureBytes: update.signatureBytes,
    signedAttributes,
    hashToSign,
  };
  return { input, seal, finisher, signature: pki.ecdsa.signDigest(hashToSign) };
}

test(
  'the finished update after the input is a seal that verifies',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { input, seal, finisher, signature } = await prepared();
    const finished = await finisher.finish(seal, signature, input);
    assert.equal(finished.inputLength, input.length);
    const checks = await verifySealedPdf(Buffer.concat([input, finished.update]));
    assert.equal(checks.length, 1);
    assert.ok(checks[0]!.valid, checks[0]!.problems.join('; '));
  },
);

test('a byte of the update changed after prepare is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { input, seal, finisher, signature } = await prepared();
  const update = Buffer.from(seal.update);
  // A byte outside /Contents: the start of the update (its first object header).
  const at = update.indexOf('obj');
  assert.ok(at > 0 && at + seal.inputLength < seal.byteRange[1]);
  update[at] = 'O'.charCodeAt(0);
  await assert.rejects(
    finisher.finish({ ...seal, update }, signature, input),
    (err: unknown) => err instanceof SealError && /message digest does not match/.test(err.message),
  );
});

test('an input that is not the one prepared is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { input, seal, finisher, signature } = await prepared();
  const other = Buffer.from(input);
  other[10] = other[10]! ^ 1;
  await assert.rejects(
    finisher.finish(seal, signature, other),
    (err: unknown) => err instanceof SealError && /message digest does not match/.test(err.message),
  );
  await assert.rejects(
    finisher.finish(seal, signature, input.subarray(1)),
    (err: unknown) => err instanceof SealError && /the input has/.test(err.message),
  );
});
