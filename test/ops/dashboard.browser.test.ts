// The ops web in a real browser (headless Debian chromium through playwright-core), against real Redis,
// the sandbox and a real SealWorker: a night of sakura's (B-T, sandbox TSA) in which one invoice's PDF
// was missing fails that invoice; the dashboard refuses a wrong password and an empty one, sends a
// browser without a session to /login and gives a script 401; after login the failure is on the page,
// its Retry button re-queues it (the PDF is back), the worker seals it, and the tenant's audit trail
// holds the ops-action. The archive page searches a real SQLite index by each field, serves the sealed
// PDF's bytes, refuses a file outside the tenant's outbox, and shows the verification. Screenshots go
// to /work/notes/screens/.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { loadJobs, type JobDefinition } from '../../src/jobs';
import { createLogger } from '../../src/common/logger';
import {
  openSealQueues,
  pausedTenants,
  produceRun,
  readRun,
  runSettled,
  SealWorker,
  type ProduceResult,
} from '../../src/queue';
import { readManifest, verifyTenantAudit, type ManifestRow } from '../../src/outbox';
import { startOpsWeb, type OpsWeb } from '../../src/ops/web-server';
import { chromiumSkip, launchChromium } from '../helpers/chromium';
import { SqliteArchive, type ArchiveIndex } from '../../src/archive';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis, type TestRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const skip = chromiumSkip;
const SCREENS = '/work/notes/screens';
const USER = 'ops-admin';
const PASSWORD = 'correct horse 馬 battery';
const MISSING = 'SKR-000002';

let dir: string;
let r: TestRedis;
let jobs: JobDefinition[];
let produced: ProduceResult;
let worker: SealWorker;
let working: Promise<void>;
let web: OpsWeb;
let browser: Browser;
let archive: ArchiveIndex;
let logLines: string[];

/** Polls `check` until it holds (a condition, not a clock): the test's own timeout bounds it. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((res) => setTimeout(res, 100));
}

/** The night and the dashboard, set up inside the test (the helpers' cleanup hooks belong to a test). */
async function setUp(): Promise<void> {
  dir = await tempDir('sealer-web-');
  r = await testRedis();
  const sandbox = await startTestSandbox(dir, { port: 0 });
  const jobsDir = path.join(dir, 'jobs');
  await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
    level: 'B-T',
    timestamp: { url: sandbox.tsaUrl },
    trustRoots: [sandbox.rootCertPath],
  });
  await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 4);
  jobs = await loadJobs(jobsDir);
  const logger = createLogger({
    level: 'info',
    destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
  });
  // The board's page below lists completed jobs: this queue keeps a few (seal queues keep none).
  const queue = openSealQueues(r.connection, r.prefix, { removeOnComplete: { count: 100 } });
  after(() => queue.close());
  produced = await produceRun(jobs[0]!, { queue, redis: r.redis, prefix: r.prefix, logger });
  assert.equal(produced.totals.enqueued, 4);
  // The PDF goes missing between enqueue and seal: that invoice fails (unsealable), the rest seal.
  const pdf = path.join(dir, 'inbox', 'sakura', 'pdf', `${MISSING}.pdf`);
  await fs.rename(pdf, path.join(dir, 'missing.pdf'));
  worker = new SealWorker({
    connection: r.connection,
    redis: r.redis,
    prefix: r.prefix,
    jobs,
    logger,
    concurrency: 4,
  });
  working = worker.run();
  await until(async () => runSettled(await readRun(r.redis, r.prefix, produced.runId)));
  assert.equal((await readRun(r.redis, r.prefix, produced.runId)).failed, 1);
  await fs.rename(path.join(dir, 'missing.pdf'), pdf);

  // The real SQLite index, in the test's folder; rows written below with chosen facts.
  archive = new SqliteArchive(path.join(dir, 'archive-page.sqlite'));
  logLines = [];
  web = await startOpsWeb({
    login: { user: USER, password: PASSWORD },
    redis: r.redis,
    connection: r.connection,
    prefix: r.prefix,
    jobs,
    archive,
    logger: createLogger({ level: 'info', destination: { write: (l: string) => void logLines.push(l) } }),
    loginFailureDelayMs: 50,
    extraRoutes: (app) => app.get('/healthz', (_req, res) => void res.json({ ok: true })),
  });
  browser = await launchChromium();
  after(async () => {
    await browser.close();
    await web.close();
    await archive.close();
    await worker.close();
    await working;
  });
  await fs.mkdir(SCREENS, { recursive: true });
}

/** Every entry of sakura's audit trail, oldest first. */
async function auditEntries(): Promise<Record<string, unknown>[]> {
  const auditDir = path.join(jobs[0]!.outboxRoot, 'sakura', 'audit');
  const files = (await fs.readdir(auditDir)).filter((f) => f.endsWith('.jsonl')).sort();
  const text = (await Promise.all(files.map((f) => fs.readFile(path.join(auditDir, f), 'utf8')))).join('');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function loggedIn(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${web.url}/`);
  await page.fill('#user', USER);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${web.url}/`), page.click('#login-submit')]);
  return { context, page };
}

async function loginAndRetry(): Promise<void> {
  // Without a session: a browser is sent to the login page, a script gets 401, a probe route is open.
  const bare = await fetch(`${web.url}/runs`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(bare.status, 302);
  assert.equal(bare.headers.get('location'), '/login?next=%2Fruns');
  assert.equal((await fetch(`${web.url}/queues/api/queues`)).status, 401);
  assert.equal((await fetch(`${web.url}/archive/file?tenant=sakura&invoice=x&sha=y`)).status, 401);
  assert.equal((await fetch(`${web.url}/actions/retry-run`, { method: 'POST' })).status, 401);
  assert.equal((await fetch(`${web.url}/healthz`)).status, 200);

  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${web.url}/`);
    assert.equal(new URL(page.url()).pathname, '/login');
    // A wrong password, then none at all: refused, still on the login page, no cookie set.
    for (const password of ['wrong password', '']) {
      await page.fill('#user', USER);
      await page.fill('#password', password);
      const [response] = await Promise.all([
        page.waitForResponse((res) => res.request().method() === 'POST' && res.url().endsWith('/login')),
        page.click('#login-submit'),
      ]);
      assert.equal(response.status(), 401, `password ${JSON.stringify(password)}`);
      assert.match((await page.textContent('#login-error')) ?? '', /Wrong user or password/);
      assert.deepEqual(await context.cookies(), []);
    }
    // A forged cookie is no session either.
    await context.addCookies([{ name: 'sealer_ops', value: 'eyJ1c2VyIjoib3BzIn0.forged', url: web.url }]);
    await page.goto(`${web.url}/`);
    assert.equal(new URL(page.url()).pathname, '/login');
  } finally {
    await context.close();
  }
  assert.ok(!logLines.join('').includes(PASSWORD), 'the password is never logged');
  assert.ok(logLines.some((l) => l.includes('dashboard login failed')));

  const { context: ctx, page } = await loggedIn();
  try {
    const cookie = (await ctx.cookies()).find((c) => c.name === 'sealer_ops')!;
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');

    // The failure, as `sealer failed` would list it.
    const row = page.locator(`#failures tr[data-invoice="${MISSING}"]`);
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], 'sakura');
    assert.equal(cells[1], produced.runId);
    assert.equal(cells[2], MISSING);
    assert.equal(cells[3], 'unsealable');
    assert.match(cells[4]!, new RegExp(`${MISSING}\\.pdf`));
    assert.equal(cells[5], '1');
    assert.equal(cells[6], produced.files[0]!.file);
    assert.equal(cells[7], '3'); // header on line 1: invoice 2 on line 3
    assert.equal(await page.locator(`#runs tr[data-run="${produced.runId}"] td.failed`).textContent(), '1');
    assert.deepEqual(await page.locator('#tenants tr[data-tenant] td:first-child').allTextContents(), [
      'sakura',
    ]);
    await page.screenshot({ path: path.join(SCREENS, 'runs-failed.png'), fullPage: true });

    // A POST without the session's CSRF token is refused, even with the session cookie.
    const jobId = (await row.getAttribute('data-job'))!;
    const forged = await fetch(`${web.url}/actions/retry-invoice`, {
      method: 'POST',
      headers: {
        cookie: `sealer_ops=${cookie.value}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ jobId }).toString(),
    });
    assert.equal(forged.status, 403);
    // The board is read-only: a retry there would bypass the audit trail.
    const boardPut = await page.request.put(`${web.url}/queues/api/queues/seal/retry/failed`);
    assert.equal(boardPut.status(), 403);

    await Promise.all([page.waitForURL(`${web.url}/`), page.click(`#retry-${MISSING}`)]);
    assert.match((await page.textContent('#flash')) ?? '', new RegExp(`^requeued 1: ${MISSING}$`));

    // The worker seals it: wait for the run to say so, then the page shows it.
    await until(async () => {
      const c = await readRun(r.redis, r.prefix, produced.runId);
      return c.sealed === 4 && c.failed === 0 && runSettled(c);
    });
    await page.reload();
    assert.equal(await page.locator('#no-failures').count(), 1);
    const runRow = page.locator(`#runs tr[data-run="${produced.runId}"]`);
    assert.equal(await runRow.locator('td.sealed').textContent(), '4');
    assert.equal(await runRow.locator('td.failed').textContent(), '0');
    assert.equal(await runRow.locator('td.state').textContent(), 'settled');
    await page.screenshot({ path: path.join(SCREENS, 'runs.png'), fullPage: true });

    // Audited: a pino line and an ops-action entry in sakura's trail, which still verifies.
    const outboxRoot = jobs[0]!.outboxRoot;
    const entries = await auditEntries();
    const ops = entries.filter((e) => e.type === 'ops-action');
    assert.equal(ops.length, 1);
    assert.deepEqual(
      { action: ops[0]!.action, by: ops[0]!.by, target: ops[0]!.target, result: ops[0]!.result },
      { action: 'retry-invoice', by: USER, target: jobId, result: `requeued 1: ${MISSING}` },
    );
    assert.ok(entries.some((e) => e.type === 'seal' && e.invoice === MISSING));
    const verified = await verifyTenantAudit(outboxRoot, 'sakura');
    assert.equal(verified.ok, true, JSON.stringify(verified));
    const line = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'ops action');
    assert.deepEqual(
      { user: line?.user, action: line?.action, target: line?.target, result: line?.result },
      { user: USER, action: 'retry-invoice', target: jobId, result: `requeued 1: ${MISSING}` },
    );

    // Retrying the sealed invoice again changes nothing and says so.
    const again = await page.request.post(`${web.url}/actions/retry-run`, {
      form: {
        runId: produced.runId,
        csrf: (await page.locator('input[name=csrf]').first().getAttribute('value'))!,
      },
      maxRedirects: 0,
    });
    assert.equal(again.status(), 303);
    await page.goto(`${web.url}/`);
    assert.equal((await page.textContent('#flash'))?.trim(), 'Failed: requeued 0');

    // Pause and resume sakura from the page: the queue part's pause, shown on the page, audited.
    const pauseState = () => page.locator('#tenants tr[data-tenant="sakura"] td.pause-state').textContent();
    const target = { redis: r.redis, connection: r.connection, prefix: r.prefix, tenants: ['sakura'] };
    await Promise.all([page.waitForURL(`${web.url}/`), page.click('#pause-sakura')]);
    assert.equal((await page.textContent('#flash'))?.trim(), 'paused: sakura');
    assert.equal(await pauseState(), 'paused');
    assert.deepEqual(await pausedTenants(target), ['sakura']);
    await Promise.all([page.waitForURL(`${web.url}/`), page.click('#resume-all')]);
    assert.equal((await page.textContent('#flash'))?.trim(), 'resumed: sakura');
    assert.equal(await pauseState(), 'sealing');
    assert.deepEqual(await pausedTenants(target), []);
    const later = (await auditEntries()).filter((e) => e.type === 'ops-action').slice(1);
    assert.deepEqual(
      later.map((e) => [e.action, e.by, e.target, e.result]),
      [
        ['retry-run', USER, produced.runId, 'requeued 0'],
        ['pause', USER, 'sakura', 'paused: sakura'],
        ['resume', USER, 'all', 'resumed: sakura'],
      ],
    );
    assert.equal((await verifyTenantAudit(jobs[0]!.outboxRoot, 'sakura')).ok, true);

    // Bull Board is served behind the same login and lists every queue of the tenant.
    await page.goto(`${web.url}/queues`);
    const api = await page.request.get(`${web.url}/queues/api/queues`);
    assert.equal(api.status(), 200);
    const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
    assert.deepEqual(names, ['renew', 'seal.sakura']);
    // The board's own page for sakura's queue, once its script has drawn the jobs.
    await page.goto(`${web.url}/queues/queue/seal.sakura?status=completed`);
    await page.waitForFunction(() => /SKR-000001/.test(document.body.innerText));
    await page.screenshot({ path: path.join(SCREENS, 'queues.png'), fullPage: true });

    // Logged out: the same cookie no longer opens a page.
    await page.goto(`${web.url}/`);
    await Promise.all([page.waitForURL(/\/login$/), page.click('header button[type=submit]')]);
    const stale = await fetch(`${web.url}/`, {
      headers: { cookie: `sealer_ops=${cookie.value}` },
      redirect: 'manual',
    });
    assert.equal(stale.status, 401);
  } finally {
    await ctx.close();
  }
}

async function archivePage(): Promise<void> {
  const outDir = path.join(jobs[0]!.outboxRoot, 'sakura', produced.runDate);
  const rows = (await readManifest(path.join(outDir, 'manifest.csv'))).sort((a, b) =>
    a.invoiceNumber.localeCompare(b.invoiceNumber),
  );
  assert.equal(rows.length, 4);
  // Metadata chosen so that each field alone picks a different set.
  const meta = [
    { customer: '株式会社青葉商事', amount: 120_000, issueDate: '2026-10-31' },
    { customer: '有限会社みどり工業', amount: 5_500, issueDate: '2026-11-05' },
    { customer: 'ＡＯＢＡ Trading', amount: 980_000, issueDate: '2026-11-20' },
    { customer: '東都物産株式会社', amount: -3_000, issueDate: '2026-11-24' },
  ];
  const entryOf = (row: ManifestRow, i: number) => ({
    tenant: 'sakura',
    invoiceNumber: row.invoiceNumber,
    ...meta[i]!,
    file: path.join(outDir, row.file),
    sealedSha256: row.sealedSha256,
    sourceSha256: row.sourceSha256,
    level: row.level ?? 'B-T',
    sealedAt: row.signingTime,
    certificateSerial: row.certificateSerial,
    job: row.job,
    runId: row.runId,
  });
  for (const [i, row] of rows.entries()) await archive.record(entryOf(row, i));
  const inv = rows.map((row) => row.invoiceNumber);

  const { context, page } = await loggedIn();
  try {
    const search = async (fields: Record<string, string>): Promise<string[]> => {
      await page.goto(`${web.url}/archive`);
      await page.selectOption('#tenant', 'sakura');
      for (const [k, v] of Object.entries(fields)) await page.fill(`#${k}`, v);
      await Promise.all([page.waitForURL(/\/archive\?/), page.click('#search-submit')]);
      return (
        await page
          .locator('#results tr[data-invoice]')
          .evaluateAll((trs) => trs.map((t) => t.getAttribute('data-invoice')!))
      ).sort();
    };
    assert.deepEqual(await search({}), inv);
    assert.deepEqual(await search({ from: '2026-11-05' }), [inv[1], inv[2], inv[3]]);
    assert.deepEqual(await search({ to: '2026-11-05' }), [inv[0], inv[1]]);
    assert.deepEqual(await search({ from: '2026-11-01', to: '2026-11-20' }), [inv[1], inv[2]]);
    assert.deepEqual(await search({ min: '100,000' }), [inv[0], inv[2]]);
    assert.deepEqual(await search({ max: '5500' }), [inv[1], inv[3]]);
    assert.deepEqual(await search({ customer: 'aoba' }), [inv[2]]);
    assert.deepEqual(await search({ customer: 'みどり' }), [inv[1]]);
    assert.deepEqual(await search({ customer: '株式会社', min: '0' }), [inv[0]]);
    assert.deepEqual(await search({ from: '2026-11-01', min: '1000', customer: '工業' }), [inv[1]]);
    assert.deepEqual(await search({ customer: '該当なし' }), []);
    assert.equal(await page.locator('#no-results').count(), 1);
    await search({ min: '12万円' });
    assert.match((await page.textContent('#query-error')) ?? '', /amount min must be a whole number/);

    // Row cells: the amount in yen, the sealing time in JST, the level.
    await search({});
    const cells = await page.locator(`#results tr[data-invoice="${inv[0]}"] td`).allTextContents();
    assert.equal(cells[1], '株式会社青葉商事');
    assert.equal(cells[2], '¥120,000');
    assert.equal(cells[3], '2026-10-31');
    assert.equal(cells[4], 'B-T');
    const jst = new Date(Date.parse(rows[0]!.signingTime) + 9 * 3600_000)
      .toISOString()
      .slice(0, 19)
      .replace('T', ' ');
    assert.equal(cells[5], `${jst} JST`);
    assert.equal(
      await page.locator(`#results tr[data-invoice="${inv[3]}"] td`).nth(2).textContent(),
      '-¥3,000',
    );
    await page.screenshot({ path: path.join(SCREENS, 'archive.png'), fullPage: true });

    // Download: an attachment with the sealed file's bytes.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator(`#results tr[data-invoice="${inv[0]}"] a.download`).click(),
    ]);
    assert.equal(download.suggestedFilename(), `${inv[0]}.pdf`);
    const saved = path.join(dir, 'downloaded.pdf');
    await download.saveAs(saved);
    assert.deepEqual(await fs.readFile(saved), await fs.readFile(path.join(outDir, rows[0]!.file)));
    // Open: the same bytes inline.
    const href = (await page.locator(`#results tr[data-invoice="${inv[0]}"] a.open`).getAttribute('href'))!;
    const inline = await page.request.get(`${web.url}${href}`);
    assert.equal(inline.headers()['content-type'], 'application/pdf');
    assert.match(inline.headers()['content-disposition'] ?? '', /^inline; filename=/);
    assert.deepEqual(Buffer.from(await inline.body()), await fs.readFile(path.join(outDir, rows[0]!.file)));

    // Verification: valid, level B-T, the signature timestamp's time.
    await page.locator(`#results tr[data-invoice="${inv[0]}"] a.verify`).click();
    await page.waitForSelector('#verification');
    assert.equal(await page.textContent('#valid'), 'valid');
    assert.equal(await page.textContent('#level'), 'B-T');
    assert.match(
      (await page.textContent('#timestamp-time')) ?? '',
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST \(\d{4}-.*Z\)$/,
    );
    await page.screenshot({ path: path.join(SCREENS, 'archive-verify.png'), fullPage: true });

    // Markup in a customer's name is shown as text, never run or rendered.
    const tricky = '<b>太字</b><script>window.pwned = 1</script> & Co';
    await archive.record({
      ...entryOf(rows[1]!, 1),
      invoiceNumber: 'ESC-1',
      customer: tricky,
      sourceSha256: 'f'.repeat(64),
    });
    await search({ customer: '太字' });
    assert.equal(await page.locator('#results tr[data-invoice="ESC-1"] td').nth(1).textContent(), tricky);
    assert.equal(await page.locator('#results b, #results script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);

    // Files outside the tenant's outbox are never served: an index entry pointing at the inbox, and
    // a symlink inside the outbox pointing out of it.
    const source = path.join(dir, 'inbox', 'sakura', 'pdf', `${inv[0]}.pdf`);
    const link = path.join(outDir, 'link-out.pdf');
    await fs.symlink(source, link);
    const outside = [
      { ...entryOf(rows[0]!, 0), invoiceNumber: 'OUT-1', file: source, sealedSha256: 'b'.repeat(64) },
      { ...entryOf(rows[0]!, 0), invoiceNumber: 'OUT-2', file: link, sealedSha256: 'c'.repeat(64) },
      {
        ...entryOf(rows[0]!, 0),
        invoiceNumber: 'OUT-3',
        file: `${outDir}/../../../inbox/sakura/pdf/${inv[0]}.pdf`,
        sealedSha256: 'd'.repeat(64),
      },
    ];
    for (const e of outside) {
      await archive.record({ ...e, sourceSha256: e.sealedSha256 });
      const res = await page.request.get(
        `${web.url}/archive/file?${new URLSearchParams({ tenant: 'sakura', invoice: e.invoiceNumber, sha: e.sealedSha256 })}`,
      );
      assert.equal(res.status(), 403, e.invoiceNumber);
    }
    const unknown = await page.request.get(
      `${web.url}/archive/file?tenant=sakura&invoice=${inv[0]}&sha=${'e'.repeat(64)}`,
    );
    assert.equal(unknown.status(), 404);
  } finally {
    await context.close();
  }
}

test('the ops web in a browser', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  await setUp();
  await t.test(
    'login is refused without the right password; a failed invoice retried from the page is sealed and audited',
    loginAndRetry,
  );
  await t.test(
    'the archive page searches by each field, downloads the sealed bytes, refuses files outside the outbox, verifies',
    archivePage,
  );
});
