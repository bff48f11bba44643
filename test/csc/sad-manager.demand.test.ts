// numSignatures follows the work queued for the credential: providers may bill what is authorised, so a
// night of 32 invoices on a credential with multisign 500 authorises 32 (the sandbox then refuses a 33rd
// signature under that SAD), never less than the batch in hand, never more than multisign or
// maxSignaturesPerAuthorisation; without a demand (or when it cannot be read) the most, as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { CscError, SadManager, Scal1Reservation, type SadManagerOptions } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';

const T = { timeout: 180_000 };
const ID = 'fuji-eseal-ec';
let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir);
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const hashes = (n: number) => Array.from({ length: n }, () => crypto.randomBytes(32));

async function manager(
  o: Partial<SadManagerOptions> = {},
): Promise<{ sadManager: SadManager; asked: number[]; client: SadManagerOptions['client'] }> {
  const client = await fx.clientFor(ID);
  const credential = await client.credentialInfo(ID);
  const asked: number[] = [];
  const sadManager = new SadManager({
    client,
    credential,
    factors: fx.factorsFor(ID),
    clock: fx.clock,
    onAuthorised: (a) => asked.push(a.numSignatures),
    ...o,
  });
  return { sadManager, asked, client };
}

test('a night of 32 invoices on a multisign-500 credential authorises 32 signatures', T, async () => {
  let queued = 32;
  const { sadManager, asked, client } = await manager({ demand: async () => queued });
  assert.equal(sadManager.maxPerAuthorisation, 500);
  const credential = sadManager.credential;
  let sad = '';
  for (let i = 0; i < 4; i++) {
    const batch = hashes(8);
    const reservation = await sadManager.reserve(batch);
    assert.ok(reservation instanceof Scal1Reservation);
    sad = reservation.sad;
    await client.signHash({ credential, reservation, hashes: batch });
    queued -= 8;
  }
  assert.deepEqual(asked, [32], 'one authorisation, sized to the night');
  assert.equal(sadManager.unusedSignatures(), 0, 'nothing authorised is left unused');
  // The provider holds us to it: a 33rd signature under that SAD is refused.
  await assert.rejects(
    client.signHash({ credential, sad, hashes: hashes(1) }),
    (e: unknown) => e instanceof CscError && /all 32 authorised signatures have been used/.test(e.message),
  );
});

test('at least the batch in hand, at most multisign or maxSignaturesPerAuthorisation', T, async () => {
  const small = await manager({ demand: async () => 3 });
  await small.sadManager.reserve(hashes(5));
  assert.deepEqual(small.asked, [5], 'a demand below the batch still covers the batch');

  const huge = await manager({ demand: async () => 10_000 });
  await huge.sadManager.reserve(hashes(1));
  assert.deepEqual(huge.asked, [500], 'capped at multisign');

  const capped = await manager({ demand: async () => 10_000, maxSignaturesPerAuthorisation: 20 });
  await capped.sadManager.reserve(hashes(1));
  assert.deepEqual(capped.asked, [20], 'capped at maxSignaturesPerAuthorisation');

  let queued = 7;
  const follows = await manager({ demand: async () => queued });
  await follows.sadManager.reserve(hashes(7));
  queued = 2;
  await follows.sadManager.reserve(hashes(2));
  assert.deepEqual(follows.asked, [7, 2], 'each authorisation asks for what is queued then');
});

test('without a demand, or when it cannot be read, the most signatures allowed (as before)', T, async () => {
  const none = await manager();
  await none.sadManager.reserve(hashes(1));
  assert.deepEqual(none.asked, [500]);

  const broken = await manager({
    demand: async () => {
      throw new Error('queue unavailable');
    },
  });
  await broken.sadManager.reserve(hashes(1));
  assert.deepEqual(broken.asked, [500]);
});
