// Synthetic sealed invoices for the archive benchmark: realistic Japanese 取引先 (a few thousand
// distinct names, some with full-width Latin letters), issue dates over ten years, amounts spread
// over four orders of magnitude with a few credit notes. Deterministic: a seed gives the same rows.
import { createHash } from 'node:crypto';
import type { ArchivedInvoice } from './archive-index';

/** mulberry32: small, fast and good enough to spread test data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FAMILY = [
  '山田',
  '佐藤',
  '鈴木',
  '高橋',
  '田中',
  '伊藤',
  '渡辺',
  '中村',
  '小林',
  '加藤',
  '吉田',
  '松本',
];
const PLACE = [
  '東京',
  '大阪',
  '名古屋',
  '札幌',
  '福岡',
  '横浜',
  '神戸',
  '京都',
  '仙台',
  '広島',
  '北陸',
  '九州',
];
const NATURE = ['さくら', '富士', '日の出', '青葉', '若葉', '朝日', '大和', '光', 'みどり', '東洋'];
const LATIN = ['ＡＢＣ', 'ＮＥＸＴ', 'Ｊ－ＴＥＣＨ', 'ＧＬＯＢＡＬ', 'ＳＵＮ'];
const TRADE = [
  '商事',
  '物産',
  '工業',
  '建設',
  '製作所',
  '電機',
  '運輸',
  '食品',
  '不動産',
  '印刷',
  'システムズ',
  'テクノロジー',
  '精機',
  '化学',
  '商会',
  '興業',
  '産業',
  'ホールディングス',
];
const FORM = ['株式会社', '有限会社', '合同会社'];

/** Every distinct customer name the generator uses (about five thousand). */
export function customerNames(): string[] {
  const stems = [...FAMILY, ...PLACE, ...NATURE, ...LATIN];
  const names: string[] = [];
  for (const stem of stems)
    for (const trade of TRADE)
      for (const [i, form] of FORM.entries()) {
        // 株式会社 before the name (前株) or after it (後株), as real companies differ.
        names.push(`${form}${stem}${trade}`, `${stem}${trade}${form}`);
        if (i === 0) names.push(`${stem}${trade}`);
      }
  return names;
}

export interface SyntheticOptions {
  tenant: string;
  count: number;
  seed?: number;
  /** first issue date; the rows spread over `years` from here */
  fromYear?: number;
  years?: number;
}

const DAY_MS = 86_400_000;

/** `count` invoices, numbered INV-0000001 upwards, in batches of `batch` for bulk loading. */
export function* syntheticInvoices(options: SyntheticOptions, batch = 10_000): Generator<ArchivedInvoice[]> {
  const random = seededRandom(options.seed ?? 1);
  const names = customerNames();
  const start = Date.UTC(options.fromYear ?? 2016, 0, 1);
  const days = Math.round(
    (Date.UTC((options.fromYear ?? 2016) + (options.years ?? 10), 0, 1) - start) / DAY_MS,
  );
  let out: ArchivedInvoice[] = [];
  for (let n = 1; n <= options.count; n++) {
    // Squaring skews towards the first names: some customers get many invoices, most get a few.
    const customer = names[Math.floor(random() ** 2 * names.length)]!;
    const issueDate = new Date(start + Math.floor(random() * days) * DAY_MS).toISOString().slice(0, 10);
    const magnitude = Math.round(10 ** (3 + random() * 4)); // ¥1,000 to ¥10,000,000, log-uniform
    const amount = random() < 0.02 ? -magnitude : magnitude;
    const number = `INV-${String(n).padStart(7, '0')}`;
    const sha = (salt: string) => createHash('sha256').update(salt).update(number).digest('hex');
    out.push({
      tenant: options.tenant,
      invoiceNumber: number,
      customer,
      amount,
      issueDate,
      file: `/var/outbox/${options.tenant}/${issueDate}/${number}.pdf`,
      sealedSha256: sha('s'),
      sourceSha256: sha('r'),
      level: 'B-T',
      sealedAt: `${issueDate}T18:00:00.000Z`,
      certificateSerial: '4f2a19c0',
      timestampAt: `${issueDate}T18:00:01.000Z`,
      job: 'nightly-invoices',
      runId: `run-${issueDate}`,
    });
    if (out.length === batch) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}
