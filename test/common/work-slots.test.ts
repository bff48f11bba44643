import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkSlots } from '../../src/common/work-slots';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('at most maxWorking tasks start; the rest wait in order', { timeout: TEST_TIMEOUT_MS }, async () => {
  const slots = new WorkSlots(2, 3);
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof deferred>>();
  const runs = ['a', 'b', 'c', 'd'].map((name) => {
    const gate = deferred();
    gates.set(name, gate);
    return slots.run(async () => {
      started.push(name);
      await gate.promise;
      return name;
    });
  });
  await settle();
  assert.deepEqual(started, ['a', 'b']);
  assert.deepEqual(slots.counts(), { working: 2, lent: 0, queued: 2 });
  gates.get('b')!.resolve();
  assert.equal(await runs[1], 'b');
  await settle();
  assert.deepEqual(started, ['a', 'b', 'c']);
  for (const g of gates.values()) g.resolve();
  assert.deepEqual(await Promise.all(runs), ['a', 'b', 'c', 'd']);
  assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
});

test(
  'a task waiting with its slot lent lets the next start, up to maxLent lent at once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const slots = new WorkSlots(1, 2);
    assert.equal(slots.capacity, 3);
    const started: string[] = [];
    const waits = new Map<string, ReturnType<typeof deferred>>();
    const finish = new Map<string, ReturnType<typeof deferred>>();
    const runs = ['a', 'b', 'c', 'd'].map((name) => {
      const wait = deferred();
      const end = deferred();
      waits.set(name, wait);
      finish.set(name, end);
      return slots.run(async (slot) => {
        started.push(name);
        await slot.lend(() => wait.promise);
        await end.promise;
      });
    });
    await settle();
    // a lends, b starts and lends, c starts: with 2 lent, c's wait keeps its slot, so d waits.
    assert.deepEqual(started, ['a', 'b', 'c']);
    assert.deepEqual(slots.counts(), { working: 1, lent: 2, queued: 1 });
    // a's wait ends: it works again at once although c holds the one working slot.
    waits.get('a')!.resolve();
    await settle();
    assert.deepEqual(slots.counts(), { working: 2, lent: 1, queued: 1 });
    assert.deepEqual(started, ['a', 'b', 'c'], 'nothing new starts while over the working bound');
    finish.get('a')!.resolve();
    await runs[0];
    await settle();
    assert.deepEqual(started, ['a', 'b', 'c'], 'c still works');
    // c's wait ends, then c ends: the working slot is free again and d starts.
    waits.get('c')!.resolve();
    finish.get('c')!.resolve();
    await runs[2];
    await settle();
    assert.deepEqual(started, ['a', 'b', 'c', 'd']);
    for (const name of ['b', 'd']) {
      waits.get(name)!.resolve();
      finish.get(name)!.resolve();
    }
    await Promise.all(runs);
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
  },
);

test(
  'a failed wait, a task that ends during its wait, and many tasks through one slot leave the counts whole',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const slots = new WorkSlots(1, 1);
    // A wait that fails takes the slot back and the task's error is its own.
    await assert.rejects(
      slots.run((slot) => slot.lend(() => Promise.reject(new Error('provider down')))),
      /provider down/,
    );
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
    // A task that does not await its wait: its slot is gone when the wait ends.
    const late = deferred();
    let stray: Promise<void> | undefined;
    await slots.run(async (slot) => {
      stray = slot.lend(() => late.promise);
    });
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
    late.resolve();
    await stray;
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
    // 200 tasks that each lend and come back, through 1 working slot and 1 lendable: all end.
    let ended = 0;
    await Promise.all(
      Array.from({ length: 200 }, () =>
        slots.run(async (slot) => {
          await slot.lend(settle);
          await settle();
          ended++;
        }),
      ),
    );
    assert.equal(ended, 200);
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
  },
);

test('bounds that are not counts are refused', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.throws(() => new WorkSlots(0, 1), /at least 1/);
  assert.throws(() => new WorkSlots(2, -1), /must be a count/);
  assert.throws(() => new WorkSlots(2, 1.5), /must be a count/);
});

test(
  "a free slot goes to each key in turn: a later key's jobs do not wait behind an earlier key's queue",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const slots = new WorkSlots(1, 0);
    const started: string[] = [];
    const gates: (() => void)[] = [];
    const runs: Promise<void>[] = [];
    const add = (name: string, key: string) =>
      runs.push(
        slots.run(async () => {
          started.push(name);
          await new Promise<void>((resolve) => gates.push(resolve));
        }, key),
      );
    for (let i = 1; i <= 5; i++) add(`big${i}`, 'sakura');
    add('small1', 'fuji');
    add('small2', 'fuji');
    await settle();
    assert.deepEqual(started, ['big1']);
    for (let n = 2; n <= 7; n++) {
      gates.shift()!();
      while (started.length < n) await settle();
    }
    // sakura's queue was there first, yet fuji's jobs alternate with it instead of waiting behind it.
    assert.deepEqual(started, ['big1', 'big2', 'small1', 'big3', 'small2', 'big4', 'big5']);
    gates.shift()!();
    await Promise.all(runs);
    assert.deepEqual(slots.counts(), { working: 0, lent: 0, queued: 0 });
  },
);
