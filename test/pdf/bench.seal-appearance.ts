// Not a test: prints what a visible seal adds to preparePdf per invoice (CPU time, so a busy machine
// distorts it less than wall time): a seal seen before is copied from a per-process cache, a new one
// is drawn and its font subset built. node --test runs every .js under test/, so it only runs when asked:
//   SEALER_BENCH=1 node dist/test/pdf/bench.seal-appearance.js
import { PNG } from 'pngjs';
import { preparePdf, renderSampleInvoice, type SealAppearance } from '../../src/pdf';

const signingTime = new Date('2025-02-01T01:02:03Z');

/** CPU µs of one call. */
async function cpuOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.cpuUsage();
  await fn();
  const t = process.cpuUsage(t0);
  return t.user + t.system;
}

/** Median over `rounds` of the mean CPU µs per call across `n` calls. */
async function measure(n: number, fn: () => Promise<unknown>, rounds = 5): Promise<number> {
  for (let i = 0; i < Math.min(n, 20); i++) await fn(); // warm-up
  const means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const t = process.cpuUsage(t0);
    means.push((t.user + t.system) / n);
  }
  return means.sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
}

function sealPng(): Buffer {
  const png = new PNG({ width: 256, height: 256 });
  for (let i = 0; i < png.data.length; i += 4) {
    const p = i / 4;
    const r = Math.hypot((p % 256) - 128, Math.floor(p / 256) - 128);
    png.data.set(r > 100 && r < 120 ? [204, 26, 26, 255] : [255, 255, 255, 0], i);
  }
  return PNG.sync.write(png);
}

async function main(): Promise<void> {
  const input = await renderSampleInvoice({
    tenantName: 'Sample Shoji KK',
    invoiceNumber: 'INV-2025-0100',
    customerName: 'Yamada Trading',
    amount: 330000,
    issueDate: '2025-01-31',
  });
  const at = { page: 1, x: 440, y: 690, size: 84 };
  const text: SealAppearance = { ...at, text: '株式会社サンプル商事' };
  const long: SealAppearance = { ...at, text: '東京都千代田区丸の内三丁目株式会社サンプル商事' };
  const image: SealAppearance = { ...at, imagePng: sealPng() };

  // First: the one-off cost of a process's first seal (font file read and parsed, fontkit warmed up).
  const first = await cpuOnce(() => preparePdf(input, { signingTime, appearance: text }));
  const size = async (appearance?: SealAppearance) =>
    (await preparePdf(input, { signingTime, appearance })).bytes.length - input.length;

  // More distinct names than the cache keeps, so every call draws (and subsets) its seal afresh.
  const kanji = [...'山田佐藤鈴木高橋伊渡辺中小林加吉松井清水森池橋本石川前岡村長坂'];
  let n = 0;
  const fresh = (): SealAppearance => {
    n++;
    return {
      ...at,
      text: `株式会社${kanji[n % kanji.length]}${kanji[Math.floor(n / kanji.length) % kanji.length]}商事`,
    };
  };

  const rows: [string, number, number][] = [
    [
      'preparePdf, invisible field',
      await measure(100, () => preparePdf(input, { signingTime })),
      await size(),
    ],
    [
      'preparePdf, text seal (12 glyphs)',
      await measure(100, () => preparePdf(input, { signingTime, appearance: text })),
      await size(text),
    ],
    [
      'preparePdf, text seal, a new name each call',
      await measure(100, () => preparePdf(input, { signingTime, appearance: fresh() })),
      await size(fresh()),
    ],
    [
      'preparePdf, text seal (25 glyphs)',
      await measure(100, () => preparePdf(input, { signingTime, appearance: long })),
      await size(long),
    ],
    [
      'preparePdf, 256x256 PNG seal',
      await measure(100, () => preparePdf(input, { signingTime, appearance: image })),
      await size(image),
    ],
  ];
  console.log(`\nseal appearance: input ${input.length} B; CPU µs per invoice (median of 5 rounds)`);
  console.log(
    `  ${'first text seal of a process (font load)'.padEnd(44)} ${first.toFixed(0).padStart(8)} µs`,
  );
  for (const [name, us, bytes] of rows) {
    console.log(`  ${name.padEnd(44)} ${us.toFixed(0).padStart(8)} µs   update ${bytes} B`);
  }
}

if (process.env.SEALER_BENCH === '1') {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
