// What every archive storage must do, as one suite run against each (SQLite, PostgreSQL): exact rows
// for each search shape alone and combined, folding, order and paging, upsert on renewal, rows that
// outlive the connection, named refusals of bad queries, and tenants kept apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArchiveError, ArchiveQueryError, type ArchiveIndex, type ArchiveQuery } from '../../src/archive';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { HAND_MADE, invoice, randomInvoices, referenceSearch } from './archive-fixture';

export interface ArchiveSubject {
  /** Opens the same storage each time (a fresh connection to it), with these options. */
  open(options?: { countCap?: number }): Promise<ArchiveIndex>;
  /** Opens a second, empty storage of the same kind (for suites that need a clean slate). */
  openEmpty(options?: { countCap?: number; probeLimit?: number }): Promise<ArchiveIndex>;
  /** SQLite's probeLimit values to run the reference comparison under (each drives searches differently). */
  probeLimits?: number[];
}

const numbers = (rows: { invoiceNumber: string }[]) => rows.map((r) => r.invoiceNumber);

async function withArchive<T>(open: Promise<ArchiveIndex>, use: (a: ArchiveIndex) => Promise<T>): Promise<T> {
  const archive = await open;
  try {
    return await use(archive);
  } finally {
    await archive.close();
  }
}

export function archiveContract(subject: ArchiveSubject): void {
  const opts = { timeout: TEST_TIMEOUT_MS };

  test(
    'each search shape alone and combined gives exactly the expected invoices, in order',
    opts,
    async () => {
      await withArchive(subject.openEmpty(), async (archive) => {
        for (const entry of HAND_MADE) await archive.record(entry);
        const search = async (q: Omit<ArchiveQuery, 'tenant'>) =>
          numbers((await archive.search({ tenant: 'fuji', ...q })).rows);
        // No filter: undated first, then by issue date, then invoice number.
        assert.deepEqual(await search({}), ['F-006', 'F-001', 'F-000', 'F-002', 'F-003', 'F-004', 'F-005']);
        assert.deepEqual(await search({ issueDateFrom: '2024-02-01', issueDateTo: '2024-03-31' }), [
          'F-000',
          'F-002',
          'F-003',
          'F-004',
        ]);
        assert.deepEqual(await search({ issueDateFrom: '2024-03-31' }), ['F-004', 'F-005']);
        assert.deepEqual(await search({ issueDateTo: '2024-01-15' }), ['F-001']);
        assert.deepEqual(await search({ amountMin: 0, amountMax: 100_000 }), ['F-000', 'F-002', 'F-004']);
        assert.deepEqual(await search({ amountMax: -1 }), ['F-005']);
        assert.deepEqual(await search({ amountMin: 300_000 }), ['F-006', 'F-003']);
        assert.deepEqual(await search({ customer: '山田' }), ['F-006', 'F-001', 'F-005']);
        assert.deepEqual(
          await search({
            issueDateFrom: '2024-01-01',
            issueDateTo: '2024-12-31',
            amountMin: 100_000,
            customer: '山田',
          }),
          ['F-001'],
        );
        assert.deepEqual(
          await search({ issueDateFrom: '2024-02-01', issueDateTo: '2024-02-01', customer: 'abc' }),
          ['F-002', 'F-003'],
        );
        assert.deepEqual(await search({ amountMin: 1, customer: '東京' }), []);
        const all = await archive.search({ tenant: 'fuji' });
        assert.equal(all.total, 7);
        assert.equal(all.totalCapped, undefined);
        // A row comes back as it was recorded, optional fields absent where they were.
        assert.deepEqual(
          all.rows.find((r) => r.invoiceNumber === 'F-006'),
          HAND_MADE.find((r) => r.invoiceNumber === 'F-006'),
        );
        assert.deepEqual(
          all.rows.find((r) => r.invoiceNumber === 'F-001'),
          HAND_MADE.find((r) => r.invoiceNumber === 'F-001'),
        );
      });
    },
  );

  test(
    'customer matching folds width and case: ＡＢＣ finds abc, ｶﾌﾞｼｷｶﾞｲｼｬ finds カブシキガイシャ, 株式会社 itself',
    opts,
    async () => {
      await withArchive(subject.openEmpty(), async (archive) => {
        for (const entry of HAND_MADE) await archive.record(entry);
        const customers = async (customer: string) =>
          numbers((await archive.search({ tenant: 'fuji', customer })).rows);
        for (const q of ['abc', 'ＡＢＣ', 'ABC', 'ａｂｃ', 'Abc'])
          assert.deepEqual(await customers(q), ['F-002', 'F-003'], `customer ${q}`);
        assert.deepEqual(await customers('ｶﾌﾞｼｷｶﾞｲｼｬ'), ['F-004']);
        assert.deepEqual(await customers('カブシキガイシャ　サクラ'), ['F-004']);
        assert.deepEqual(await customers('株式会社'), ['F-006', 'F-001', 'F-000']);
        assert.deepEqual(await customers('ＴＲＡＤＩＮＧ'), ['F-003']);
        // A blank box is no filter at all.
        assert.equal((await archive.search({ tenant: 'fuji', customer: '  ' })).total, 7);
        assert.deepEqual(await customers('商会x'), []);
      });
    },
  );

  for (const probeLimit of subject.probeLimits ?? [undefined]) {
    test(
      `600 random invoices: every query agrees row for row with a reference search, pages included${probeLimit === undefined ? '' : ` (probeLimit ${probeLimit})`}`,
      opts,
      async () => {
        const all = randomInvoices(600);
        await withArchive(
          subject.openEmpty(probeLimit === undefined ? {} : { probeLimit }),
          async (archive) => {
            if (archive.recordMany) await archive.recordMany(all.slice(0, 300));
            else for (const e of all.slice(0, 300)) await archive.record(e);
            for (const e of all.slice(300)) await archive.record(e);
            const queries: ArchiveQuery[] = [];
            for (const tenant of ['fuji', 'sakura'])
              for (const dates of [
                {},
                { issueDateFrom: '2023-03-01', issueDateTo: '2023-09-30' },
                { issueDateFrom: '2024-06-01' },
              ])
                for (const amounts of [
                  {},
                  { amountMin: 0, amountMax: 250_000 },
                  { amountMax: 0 },
                  { amountMin: 700_000 },
                ])
                  for (const customer of [
                    undefined,
                    '株式会社',
                    'ＡＢＣ',
                    'abc',
                    'かぶしき',
                    'ｶﾌﾞｼｷ',
                    '50%',
                    'r_s',
                    'der_',
                    '%',
                    '（株）',
                  ])
                    queries.push({
                      tenant,
                      ...dates,
                      ...amounts,
                      ...(customer === undefined ? {} : { customer }),
                      limit: 1000,
                    });
            let nonEmpty = 0;
            for (const q of queries) {
              const expected = referenceSearch(all, q);
              const got = await archive.search(q);
              assert.deepEqual(numbers(got.rows), numbers(expected), JSON.stringify(q));
              assert.deepEqual(got.rows, expected, JSON.stringify(q));
              assert.equal(got.total, expected.length, JSON.stringify(q));
              if (expected.length > 0) nonEmpty++;
            }
            assert.ok(
              nonEmpty > queries.length / 2,
              `most queries match something (${nonEmpty}/${queries.length})`,
            );
            // Pages of 37 put together are the whole answer, each row once.
            const wide: ArchiveQuery = { tenant: 'fuji', issueDateFrom: '2023-01-01' };
            const expected = numbers(referenceSearch(all, wide));
            const paged: string[] = [];
            for (let offset = 0; offset < expected.length + 37; offset += 37) {
              const page = await archive.search({ ...wide, limit: 37, offset });
              assert.equal(page.total, expected.length);
              paged.push(...numbers(page.rows));
            }
            assert.deepEqual(paged, expected);
            assert.ok(expected.length > 300);
          },
        );
      },
    );
  }

  test(
    'a renewal (same tenant, invoice and source digest) updates the one row; another source is a second version',
    opts,
    async () => {
      await withArchive(subject.openEmpty(), async (archive) => {
        const first = invoice('fuji', 'INV-9', '株式会社山田商事', 5000, '2025-05-05', { level: 'B-LT' });
        await archive.record(first);
        const renewed = { ...first, level: 'B-LTA', sealedSha256: 'c'.repeat(64), runId: 'renew-1' };
        await archive.record(renewed);
        assert.deepEqual(await archive.find('fuji', 'INV-9'), [renewed]);
        const search = await archive.search({ tenant: 'fuji', customer: '山田' });
        assert.equal(search.total, 1);
        assert.equal(search.rows[0]?.level, 'B-LTA');
        // A corrected PDF of the same invoice number is another version: both kept, newest first.
        const corrected = {
          ...first,
          sourceSha256: 'd'.repeat(64),
          sealedAt: '2026-12-01T01:00:00.000Z',
          amount: 5500,
        };
        await archive.record(corrected);
        assert.deepEqual(await archive.find('fuji', 'INV-9'), [corrected, renewed]);
        assert.deepEqual(await archive.find('sakura', 'INV-9'), []);
        assert.equal((await archive.search({ tenant: 'fuji' })).total, 2);
      });
    },
  );

  test('rows survive closing and reopening the archive', opts, async () => {
    const entries = [
      invoice('fuji', 'KEEP-1', '大阪運輸（株）', 777, '2025-01-01'),
      invoice('sakura', 'KEEP-2', 'ＡＢＣ商会', 888, undefined),
    ];
    await withArchive(subject.open(), async (archive) => {
      for (const e of entries) await archive.record(e);
    });
    await withArchive(subject.open(), async (archive) => {
      assert.deepEqual(await archive.find('fuji', 'KEEP-1'), [entries[0]]);
      assert.deepEqual((await archive.search({ tenant: 'sakura', customer: 'abc' })).rows, [entries[1]]);
    });
  });

  test(
    'a rendered invoice keeps its registration number; a malformed one is refused naming the field',
    opts,
    async () => {
      await withArchive(subject.openEmpty(), async (archive) => {
        const rendered = invoice('fuji', 'R-1', '株式会社山田商事', 11_000, '2026-11-30', {
          registrationNumber: 'T8010001008846',
        });
        await archive.record(rendered);
        await archive.record(invoice('fuji', 'P-1', '株式会社山田商事', 5_000, '2026-11-30'));
        assert.deepEqual(await archive.find('fuji', 'R-1'), [rendered]);
        const { rows } = await archive.search({ tenant: 'fuji', customer: '山田' });
        assert.deepEqual(
          rows.map((r) => [r.invoiceNumber, r.registrationNumber]),
          [
            ['P-1', undefined],
            ['R-1', 'T8010001008846'],
          ],
        );
        for (const bad of [
          '8010001008846',
          'T801000100884',
          'T80100010088460',
          't8010001008846',
          'T801000100884X',
        ]) {
          await assert.rejects(
            archive.record(invoice('fuji', 'R-2', 'x', 1, undefined, { registrationNumber: bad })),
            (err: unknown) =>
              err instanceof ArchiveError &&
              /invoice "R-2".*registrationNumber must be T and 13 digits/.test(err.message),
            bad,
          );
        }
        assert.deepEqual(await archive.find('fuji', 'R-2'), []);
        // An update that does not know it (a renewal, a rebuild from an older manifest) keeps it.
        const { registrationNumber: _kept, ...without } = rendered;
        await archive.record({ ...without, level: 'B-LTA', sealedSha256: 'c'.repeat(64) });
        assert.deepEqual(await archive.find('fuji', 'R-1'), [
          { ...rendered, level: 'B-LTA', sealedSha256: 'c'.repeat(64) },
        ]);
      });
    },
  );

  test('tenant A never sees tenant B: same customers, same invoice numbers', opts, async () => {
    await withArchive(subject.openEmpty(), async (archive) => {
      for (const entry of HAND_MADE) await archive.record(entry);
      await archive.record(invoice('sakura', 'F-001', '株式会社山田商事', 1, '2024-01-15'));
      const sakura = await archive.search({ tenant: 'sakura', limit: 1000 });
      assert.deepEqual(numbers(sakura.rows), ['F-001', 'S-001', 'S-002']);
      assert.ok(sakura.rows.every((r) => r.tenant === 'sakura'));
      for (const q of [{}, { customer: '山田' }, { amountMin: 0 }, { issueDateFrom: '2000-01-01' }]) {
        const fuji = await archive.search({ tenant: 'fuji', ...q });
        assert.ok(
          fuji.rows.every((r) => r.tenant === 'fuji'),
          JSON.stringify(q),
        );
        assert.ok(!numbers(fuji.rows).some((n) => n.startsWith('S-')), JSON.stringify(q));
      }
      assert.deepEqual(
        (await archive.find('fuji', 'F-001')).map((r) => r.amount),
        [120_000],
      );
      assert.equal((await archive.search({ tenant: 'nobody' })).total, 0);
    });
  });

  test('bad query values are refused naming the field', opts, async () => {
    await withArchive(subject.open(), async (archive) => {
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ issueDateFrom: '2024-05-01', issueDateTo: '2024-04-30' }, 'issueDateFrom'],
        [{ issueDateFrom: '2024-02-30' }, 'issueDateFrom'],
        [{ issueDateTo: '2024/01/01' }, 'issueDateTo'],
        [{ amountMin: 1.5 }, 'amountMin'],
        [{ amountMax: Number.NaN }, 'amountMax'],
        [{ amountMin: '100' }, 'amountMin'],
        [{ amountMin: 10, amountMax: 9 }, 'amountMin'],
        [{ limit: 1001 }, 'limit'],
        [{ limit: 2.5 }, 'limit'],
        [{ offset: -1 }, 'offset'],
        [{ tenant: '' }, 'tenant'],
      ];
      for (const [q, field] of bad) {
        await assert.rejects(
          archive.search({ tenant: 'fuji', ...q } as ArchiveQuery),
          (err: unknown) =>
            err instanceof ArchiveQueryError && err.field === field && err.message.includes(field),
          JSON.stringify(q),
        );
      }
      assert.equal((await archive.search({ tenant: 'fuji', limit: 1000 })).rows.length <= 1000, true);
      await assert.rejects(
        archive.record(invoice('fuji', 'BAD-1', 'x', 1.25, '2024-01-01')),
        (err: unknown) => err instanceof ArchiveError && /BAD-1.*amount/.test(err.message),
      );
      await assert.rejects(
        archive.record(invoice('fuji', 'BAD-2', 'x', 1, '2024-13-01')),
        (err: unknown) => err instanceof ArchiveError && /BAD-2.*issueDate/.test(err.message),
      );
      assert.deepEqual(await archive.find('fuji', 'BAD-1'), []);
    });
  });

  test('the total stops counting at the cap and says so', opts, async () => {
    await withArchive(subject.openEmpty({ countCap: 5 }), async (archive) => {
      for (let i = 0; i < 8; i++)
        await archive.record(invoice('fuji', `C-${i}`, i < 6 ? '山田' : '佐藤', i, '2024-01-01'));
      const capped = await archive.search({ tenant: 'fuji', limit: 3 });
      assert.deepEqual([capped.total, capped.totalCapped, capped.rows.length], [5, true, 3]);
      const cappedCustomer = await archive.search({ tenant: 'fuji', customer: '山田' });
      assert.deepEqual(
        [cappedCustomer.total, cappedCustomer.totalCapped, cappedCustomer.rows.length],
        [5, true, 6],
      );
      const exact = await archive.search({ tenant: 'fuji', customer: '佐藤' });
      assert.deepEqual([exact.total, exact.totalCapped, numbers(exact.rows)], [2, undefined, ['C-6', 'C-7']]);
      const five = await archive.search({ tenant: 'fuji', amountMax: 4 });
      assert.deepEqual([five.total, five.totalCapped], [5, undefined]);
    });
  });
}
