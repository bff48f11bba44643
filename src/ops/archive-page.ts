// The finance archive page (`/archive`): search a tenant's sealed invoices by issue-date range, amount
// range and customer (any of them, alone or combined) through the ArchiveIndex; each row opens the
// sealed PDF inline, downloads it, or shows its verification (verifySealedPdf with the job's trust
// roots: valid, level, timestamp time). Only a file inside the tenant's outbox folder is ever served.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Express, Request, Response } from 'express';
import type { ArchiveIndex, ArchiveQuery, ArchivedInvoice } from '../archive/archive-index';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { verifySealedPdf, type SignatureCheck } from '../pades';
import { trustRootsOf } from '../queue/signing-contexts';
import { markup, page, type Raw } from './html';
import { authed, requireSession } from './login';
import type { SessionKeeper } from './session';

export interface ArchivePageOptions {
  archive?: ArchiveIndex;
  jobs: JobDefinition[];
  sessions: SessionKeeper;
  logger: Logger;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const JST = new Intl.DateTimeFormat('sv-SE', {
  timeZone: 'Asia/Tokyo',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** ¥1,234,567 (a credit note: -¥5,000). */
export function formatYen(amount: number): string {
  return `${amount < 0 ? '-' : ''}¥${Math.abs(amount).toLocaleString('en-US')}`;
}

/** An ISO time as Japan reads it: 2026-12-01 11:02:03 JST. */
export function formatJst(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${JST.format(d)} JST`;
}

class QueryError extends Error {}

/** The form's fields as an ArchiveQuery; a malformed field is named. */
function parseQuery(q: Record<string, unknown>, tenants: string[]): ArchiveQuery | undefined {
  const str = (k: string) =>
    typeof q[k] === 'string' && (q[k] as string).trim() !== '' ? (q[k] as string).trim() : undefined;
  const tenant = str('tenant');
  if (tenant === undefined) return undefined;
  if (!tenants.includes(tenant)) throw new QueryError(`no tenant ${tenant}`);
  const date = (k: string, label: string) => {
    const v = str(k);
    if (v !== undefined && (!DATE.test(v) || Number.isNaN(Date.parse(v))))
      throw new QueryError(`${label} must be a date (YYYY-MM-DD)`);
    return v;
  };
  const yen = (k: string, label: string) => {
    const v = str(k)?.replace(/[,¥￥\s]/g, '');
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new QueryError(`${label} must be a whole number of yen`);
    return Number(v);
  };
  return {
    tenant,
    issueDateFrom: date('from', 'issue date from'),
    issueDateTo: date('to', 'issue date to'),
    amountMin: yen('min', 'amount min'),
    amountMax: yen('max', 'amount max'),
    customer: str('customer'),
    limit: 200,
  };
}

function rowLink(action: string, r: ArchivedInvoice, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    tenant: r.tenant,
    invoice: r.invoiceNumber,
    sha: r.sealedSha256,
    ...extra,
  });
  return `/archive/${action}?${params.toString()}`;
}

function searchForm(tenants: string[], q: Record<string, unknown>): Raw {
  const v = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : '');
  return markup`<form method="get" action="/archive" id="search">
    <fieldset>
      <legend>Search sealed invoices</legend>
      <label
        >Tenant
        <select name="tenant" id="tenant">
          ${tenants.map(
            (t) => markup`<option value="${t}" ${v('tenant') === t ? markup` selected` : ''}>${t}</option>`,
          )}
        </select></label
      >
      <label>Issue date from <input type="date" name="from" id="from" value="${v('from')}" /></label>
      <label>to <input type="date" name="to" id="to" value="${v('to')}" /></label>
      <label>Amount min ¥ <input name="min" id="min" inputmode="numeric" value="${v('min')}" /></label>
      <label>max ¥ <input name="max" id="max" inputmode="numeric" value="${v('max')}" /></label>
      <label>Customer <input name="customer" id="customer" value="${v('customer')}" /></label>
      <button type="submit" id="search-submit">Search</button>
    </fieldset>
  </form>`;
}

function resultsTable(rows: ArchivedInvoice[], total: number, capped: boolean | undefined): Raw {
  if (rows.length === 0) return markup`<p id="no-results">No sealed invoice matches.</p>`;
  return markup`<p id="result-count">
      ${total}${capped ? '+' : ''} match(es)${total > rows.length ? `, first ${rows.length} shown` : ''}.
    </p>
    <table id="results">
      <thead>
        <tr>
          <th>Invoice</th>
          <th>Customer</th>
          <th>Amount</th>
          <th>Issue date</th>
          <th>Level</th>
          <th>Sealed at (JST)</th>
          <th>Registration no.</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            markup`<tr data-invoice="${r.invoiceNumber}">
              <td>${r.invoiceNumber}</td>
              <td>${r.customer}</td>
              <td class="num">${formatYen(r.amount)}</td>
              <td>${r.issueDate ?? ''}</td>
              <td>${r.level}</td>
              <td>${formatJst(r.sealedAt)}</td>
              <td>${r.registrationNumber ?? ''}</td>
              <td>
                <a href="${rowLink('file', r)}" target="_blank" class="open">Open</a>
                <a href="${rowLink('file', r, { download: '1' })}" class="download">Download</a>
                <a href="${rowLink('verify', r)}" class="verify">Verify</a>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

/** Whether `file` is inside `dir`, after following symlinks on both. */
async function inside(dir: string, file: string): Promise<boolean> {
  try {
    const [d, f] = await Promise.all([fs.realpath(dir), fs.realpath(file)]);
    return f.startsWith(d + path.sep);
  } catch {
    return false;
  }
}

export function mountArchivePage(app: Express, o: ArchivePageOptions): void {
  const guard = requireSession(o.sessions);
  const tenants = [...new Set(o.jobs.map((j) => j.tenant))].sort();

  /** The archived entry a row link names, and the file, checked to be inside the tenant's outbox. */
  const entryOf = async (
    req: Request,
    res: Response,
  ): Promise<{ entry: ArchivedInvoice; file: string } | undefined> => {
    const { tenant, invoice, sha } = req.query;
    if (!o.archive) {
      res.status(404).type('text').send('no archive index is configured for this dashboard');
      return undefined;
    }
    if (
      typeof tenant !== 'string' ||
      typeof invoice !== 'string' ||
      typeof sha !== 'string' ||
      !tenants.includes(tenant)
    ) {
      res.status(400).type('text').send('tenant (a known one), invoice and sha are required');
      return undefined;
    }
    const entry = (await o.archive.find(tenant, invoice)).find((e) => e.sealedSha256 === sha);
    if (!entry) {
      res.status(404).type('text').send(`no archived invoice ${invoice} of ${tenant} with that digest`);
      return undefined;
    }
    const file = path.resolve(entry.file);
    const roots = o.jobs.filter((j) => j.tenant === tenant).map((j) => path.join(j.outboxRoot, tenant));
    for (const root of roots) if (await inside(root, file)) return { entry, file };
    o.logger.warn({ tenant, invoice, file }, 'archive page refused a file outside the tenant outbox');
    res.status(403).type('text').send("the archived file is not inside the tenant's outbox folder");
    return undefined;
  };

  app.get('/archive', guard, async (req, res) => {
    const { session, csrf } = authed(res);
    const q = req.query as Record<string, unknown>;
    let body: Raw;
    if (!o.archive) {
      body = markup`<p class="error" id="no-archive">No archive index is configured for this dashboard.</p>`;
    } else {
      let query: ArchiveQuery | undefined;
      let error: string | undefined;
      try {
        query = parseQuery(q, tenants);
      } catch (err) {
        if (!(err instanceof QueryError)) throw err;
        error = err.message;
      }
      const found = query ? await o.archive.search(query) : undefined;
      body = markup`${searchForm(tenants, q)}${error ? markup`<p class="error" id="query-error">${error}</p>` : ''}
      ${found ? resultsTable(found.rows, found.total, found.totalCapped) : ''}`;
    }
    res.type('html').send(page({ title: 'Archive', user: session.user, csrf, body }));
  });

  app.get('/archive/file', guard, async (req, res) => {
    const hit = await entryOf(req, res);
    if (!hit) return;
    const { entry, file } = hit;
    const disposition = req.query.download === '1' ? 'attachment' : 'inline';
    o.logger.info(
      { user: authed(res).session.user, tenant: entry.tenant, invoice: entry.invoiceNumber, disposition },
      'archive file served',
    );
    res.setHeader('Content-Type', 'application/pdf');
    // Invoice numbers are [A-Za-z0-9._-] (the export's rule), so the name needs no encoding.
    res.setHeader('Content-Disposition', `${disposition}; filename="${entry.invoiceNumber}.pdf"`);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.send(await fs.readFile(file));
  });

  app.get('/archive/verify', guard, async (req, res) => {
    const hit = await entryOf(req, res);
    if (!hit) return;
    const { entry, file } = hit;
    const { session, csrf } = authed(res);
    const job = o.jobs.find((j) => j.name === entry.job) ?? o.jobs.find((j) => j.tenant === entry.tenant)!;
    let roots: Buffer[] | undefined;
    try {
      roots = await trustRootsOf(job);
    } catch {
      roots = undefined; // a B-B job may name none: the chain is then reported as not checked
    }
    let checks: SignatureCheck[] = [];
    let error: string | undefined;
    try {
      checks = await verifySealedPdf(await fs.readFile(file), { trustedRootsDer: roots });
      if (checks.length === 0) error = 'no signature found';
    } catch (err) {
      error = (err as Error).message;
    }
    const sig = checks.find((c) => c.kind === 'signature');
    const valid = error === undefined && checks.length > 0 && checks.every((c) => c.valid);
    const tsTime = sig?.signatureTimestamp?.genTime ?? sig?.documentTimestamp?.genTime;
    const tsText = tsTime ? `${formatJst(tsTime.toISOString())} (${tsTime.toISOString()})` : 'no timestamp';
    const body = markup`<table id="verification">
        <tbody>
          <tr>
            <th>Invoice</th>
            <td>${entry.invoiceNumber}</td>
          </tr>
          <tr>
            <th>Customer</th>
            <td>${entry.customer}</td>
          </tr>
          <tr>
            <th>Amount</th>
            <td>${formatYen(entry.amount)}</td>
          </tr>
          <tr>
            <th>Valid</th>
            <td id="valid" class="${valid ? 'ok' : 'error'}">${valid ? 'valid' : 'INVALID'}</td>
          </tr>
          <tr>
            <th>Level</th>
            <td id="level">${sig?.level ?? ''}</td>
          </tr>
          <tr>
            <th>Timestamp time</th>
            <td id="timestamp-time">${tsText}</td>
          </tr>
          <tr>
            <th>Signer</th>
            <td>${sig?.signerSubject ?? ''}</td>
          </tr>
          <tr>
            <th>Chain</th>
            <td>
              ${roots ? (sig?.chainTrusted ? 'trusted' : 'NOT trusted') : 'not checked (the job names no trust roots)'}
            </td>
          </tr>
          <tr>
            <th>Sealed at (JST)</th>
            <td>${formatJst(entry.sealedAt)}</td>
          </tr>
        </tbody>
      </table>
      ${error ? markup`<p class="error" id="verify-error">${error}</p>` : ''}
      ${checks.flatMap((c) => c.problems.map((p) => markup`<p class="error">${c.kind} ${c.index + 1}: ${p}</p>`))}
      <p>
        <a href="${rowLink('file', entry)}" target="_blank">Open</a>
        <a href="${rowLink('file', entry, { download: '1' })}">Download</a>
        <a href="/archive?tenant=${encodeURIComponent(entry.tenant)}">Back to the archive</a>
      </p>`;
    res
      .type('html')
      .send(page({ title: `Verification of ${entry.invoiceNumber}`, user: session.user, csrf, body }));
  });
}
