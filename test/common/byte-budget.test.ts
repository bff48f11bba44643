import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteBudget, type Release } from '../../src/common/byte-budget';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

test(
  'requests that fit are granted at once; the rest wait in order',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const budget = new ByteBudget(100);
    const granted: string[] = [];
    const releases = new Map<string, Release>();
    const asked: Promise<void>[] = [];
    const ask = (name: string, bytes: number) =>
      asked.push(
        budget.acquire(bytes).then((release) => {
          granted.push(name);
          releases.set(name, release);
        }),
      );
    ask('a', 60);
    ask('b', 30);
    ask('c', 50); // does not fit beside a and b
    ask('d', 5); // would fit, but waits behind c: a large request is not passed over
    await settle();
    assert.deepEqual(granted, ['a', 'b']);
    assert.equal(budget.inUse, 90);
    assert.equal(budget.queued, 2);
    releases.get('b')!();
    await settle();
    assert.deepEqual(granted, ['a', 'b'], 'c still does not fit beside a');
    releases.get('a')!();
    releases.get('a')!(); // a second release gives nothing back twice
    await settle();
    assert.deepEqual(granted, ['a', 'b', 'c', 'd']);
    assert.equal(budget.inUse, 55);
    releases.get('c')!();
    releases.get('d')!();
    assert.equal(budget.inUse, 0);
    await Promise.all(asked);
  },
);

test('a request larger than the budget runs alone', { timeout: TEST_TIMEOUT_MS }, async () => {
  const budget = new ByteBudget(100);
  const small = await budget.acquire(10);
  let bigRelease: Release | undefined;
  const big = budget.acquire(1_000_000).then((r) => (bigRelease = r));
  let after = false;
  const next = budget.acquire(1).then(() => (after = true));
  await settle();
  assert.equal(bigRelease, undefined, 'the large one waits for what is held');
  small();
  await settle();
  assert.ok(bigRelease, 'then it is granted, alone');
  assert.equal(budget.inUse, 100);
  assert.equal(after, false);
  (bigRelease as Release)();
  await settle();
  assert.equal(after, true);
  await Promise.all([big, next]);
});

test(
  'a budget or a size that is not a count is refused; Infinity takes the whole budget',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    assert.throws(() => new ByteBudget(0), RangeError);
    // A size read from somewhere that had none must not wedge everything queued behind it.
    const budget = new ByteBudget(10);
    await assert.rejects(budget.acquire(Number.NaN), RangeError);
    const release = await budget.acquire(Infinity);
    assert.equal(budget.inUse, 10, 'Infinity takes the whole budget');
    release();
    assert.throws(() => new ByteBudget(1.5), RangeError);
  },
);
