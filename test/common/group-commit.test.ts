// Group commit: callers in the same turn, or arriving while a write runs, share one write; results go
// back in order; a failed write fails its group, or (isolateFailures) only the bad item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit, KeyedGroupCommit } from '../../src/common/group-commit';

const TIMEOUT = { timeout: 30_000 };

/** A promise and the function that resolves it, to hold a write open until the test says so. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

test('items submitted together share one write and get their own results in order', TIMEOUT, async () => {
  const writes: number[][] = [];
  const group = new GroupCommit<number, number>(async (items) => {
    writes.push(items);
    return items.map((n) => n * 10);
  });
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
  assert.deepEqual(results, [10, 20, 30, 40, 50]);
  assert.deepEqual(writes, [[1, 2, 3, 4, 5]]);
});

test('items that arrive while a write runs go into the next write, all of them in one', TIMEOUT, async () => {
  const writes: string[][] = [];
  const first = gate();
  let started!: () => void;
  const firstStarted = new Promise<void>((resolve) => (started = resolve));
  const group = new GroupCommit<string>(async (items) => {
    writes.push(items);
    if (writes.length === 1) {
      started();
      await first.opened;
    }
  });
  const a = group.submit('a');
  await firstStarted;
  const later = ['b', 'c', 'd'].map((s) => group.submit(s));
  assert.equal(group.pending, 3, 'b, c and d wait while a is written');
  first.open();
  await Promise.all([a, ...later]);
  assert.deepEqual(writes, [['a'], ['b', 'c', 'd']]);
  assert.ok(group.idle);
});

test('maxItems splits a large group', TIMEOUT, async () => {
  const sizes: number[] = [];
  const group = new GroupCommit<number>(
    async (items) => {
      sizes.push(items.length);
    },
    { maxItems: 4 },
  );
  await Promise.all(Array.from({ length: 10 }, (_, i) => group.submit(i)));
  assert.deepEqual(sizes, [4, 4, 2]);
});

test('a failed write fails every item of its group, and the next group still writes', TIMEOUT, async () => {
  let calls = 0;
  const group = new GroupCommit<number>(async () => {
    calls++;
    if (calls === 1) throw new Error('disk full');
  });
  const settled = await Promise.allSettled([group.submit(1), group.submit(2)]);
  assert.deepEqual(
    settled.map((s) => s.status),
    ['rejected', 'rejected'],
  );
  assert.match(String((settled[0] as PromiseRejectedResult).reason), /disk full/);
  await group.submit(3);
  assert.equal(calls, 2);
});

test('isolateFailures: one bad item fails alone, the others are written', TIMEOUT, async () => {
  const written: number[] = [];
  const group = new GroupCommit<number>(
    async (items) => {
      // all or none, like a transaction
      if (items.includes(13)) throw new Error(`row 13 is bad`);
      written.push(...items);
    },
    { isolateFailures: true },
  );
  const settled = await Promise.allSettled([11, 12, 13, 14].map((n) => group.submit(n)));
  assert.deepEqual(
    settled.map((s) => s.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((settled[2] as PromiseRejectedResult).reason), /row 13 is bad/);
  assert.deepEqual(written.sort(), [11, 12, 14]);
});

test('isolateFailures: when single writes fail too, the rest fail at once', TIMEOUT, async () => {
  let writes = 0;
  const group = new GroupCommit<number>(
    async () => {
      writes++;
      throw new Error('database unreachable');
    },
    { isolateFailures: true },
  );
  const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => group.submit(i)));
  assert.ok(settled.every((s) => s.status === 'rejected'));
  assert.equal(writes, 3, 'the group, then two single items; not one write per item');
});

test('keyed groups write each key on its own and forget a key once idle', TIMEOUT, async () => {
  const writes: string[] = [];
  const keyed = new KeyedGroupCommit<number>(async (key, items) => {
    writes.push(`${key}:${items.join(',')}`);
  });
  await Promise.all([keyed.submit('x', 1), keyed.submit('y', 2), keyed.submit('x', 3)]);
  assert.deepEqual(writes.sort(), ['x:1,3', 'y:2']);
  // Forgotten groups are made again on demand: a later item is still written.
  await new Promise((resolve) => setImmediate(resolve));
  await keyed.submit('x', 4);
  assert.ok(writes.includes('x:4'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal((keyed as unknown as { groups: Map<string, unknown> }).groups.size, 0);
});
