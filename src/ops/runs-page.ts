// The runs page (`/`, also `/runs`): recent runs with their counts, the tenants and whether each is
// paused, and the failed invoices with tenant, run, kind, reason, attempts, export file and line;
// with buttons that retry an invoice or a run's failures and pause or resume a tenant or all. The
// buttons POST to /actions/*, which call OpsActions (audited) and come back here with the outcome.
import type { Express, Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { listFailed, listRunSummaries, type FailedInvoice, type RunSummary } from '../queue';
import { actionButton, markup, page, type Raw } from './html';
import { authed, requireSession } from './login';
import { BadActionRequest, type ActionOutcome, type OpsActions } from './ops-actions';
import type { SessionKeeper } from './session';

export interface RunsPageOptions {
  redis: Redis;
  prefix: string;
  actions: OpsActions;
  sessions: SessionKeeper;
}

/** The most failures listed on the page; the rest are counted (and `sealer failed` lists them all). */
const MAX_FAILURES_SHOWN = 500;

function runsTable(runs: RunSummary[], csrf: string): Raw {
  if (runs.length === 0) return markup`<p id="no-runs">No runs recorded.</p>`;
  return markup`<table id="runs">
    <thead>
      <tr>
        <th>Run</th>
        <th>Tenant</th>
        <th>Job</th>
        <th>State</th>
        <th>Level</th>
        <th>Started</th>
        <th>Ended</th>
        <th>Queued</th>
        <th>Sealed</th>
        <th>Already sealed</th>
        <th>Failed</th>
        <th>Rejected</th>
        <th>Pending</th>
        <th>Awaiting approval</th>
        <th></th>
      </tr>
    </thead>
    <tbody>
      ${runs.map(
        (r) =>
          markup`<tr data-run="${r.runId}">
            <td>${r.runId}</td>
            <td>${r.tenant ?? '?'}</td>
            <td>${r.job ?? ''}</td>
            <td class="state">${r.state}</td>
            <td>${r.level ?? ''}</td>
            <td>${r.startedAt ?? ''}</td>
            <td>${r.endedAt ?? ''}</td>
            <td class="num">${r.counts.queued}</td>
            <td class="num sealed">${r.counts.sealed}</td>
            <td class="num">${r.counts.alreadySealed}</td>
            <td class="num failed">${r.counts.failed}</td>
            <td class="num">${r.counts.rejected}</td>
            <td class="num">${r.counts.pending}</td>
            <td class="num">${r.counts.awaitingApproval}</td>
            <td>
              ${r.counts.failed > 0 ? actionButton('/actions/retry-run', "Retry this run's failures", csrf, { runId: r.runId }) : ''}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function failuresTable(failures: FailedInvoice[], csrf: string): Raw {
  if (failures.length === 0) return markup`<p id="no-failures">No failed invoices.</p>`;
  const shown = failures.slice(0, MAX_FAILURES_SHOWN);
  return markup`<table id="failures">
      <thead>
        <tr>
          <th>Tenant</th>
          <th>Run</th>
          <th>Invoice</th>
          <th>Kind</th>
          <th>Reason</th>
          <th>Attempts</th>
          <th>Export file</th>
          <th>Line</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${shown.map(
          (f) =>
            markup`<tr data-invoice="${f.invoice}" data-job="${f.jobId ?? ''}">
              <td>${f.tenant ?? '?'}</td>
              <td>${f.runId}</td>
              <td>${f.invoice}</td>
              <td>${f.kind ?? ''}</td>
              <td>${f.reason}</td>
              <td class="num">${f.attempts ?? ''}</td>
              <td>${f.exportFile ?? ''}</td>
              <td class="num">${f.line}</td>
              <td>
                ${f.jobId ? actionButton('/actions/retry-invoice', 'Retry', csrf, { jobId: f.jobId }, `retry-${f.invoice}`) : ''}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${failures.length > shown.length ? markup`<p>${failures.length - shown.length} more not shown (see <code>sealer failed</code>).</p>` : ''}`;
}

function tenantsTable(tenants: string[], paused: string[] | Error, csrf: string): Raw {
  const state = (t: string) =>
    paused instanceof Error ? 'unknown' : paused.includes(t) ? 'paused' : 'sealing';
  return markup`${paused instanceof Error ? markup`<p class="error">Cannot tell which tenants are paused: ${paused.message}</p>` : ''}
    <table id="tenants">
      <thead>
        <tr>
          <th>Tenant</th>
          <th>Sealing</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${tenants.map(
          (t) =>
            markup`<tr data-tenant="${t}">
              <td>${t}</td>
              <td class="pause-state">${state(t)}</td>
              <td>
                ${actionButton('/actions/pause', 'Pause', csrf, { tenant: t }, `pause-${t}`)}
                ${actionButton('/actions/resume', 'Resume', csrf, { tenant: t }, `resume-${t}`)}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <div>
      ${actionButton('/actions/pause', 'Pause all', csrf, {}, 'pause-all')}
      ${actionButton('/actions/resume', 'Resume all', csrf, {}, 'resume-all')}
    </div>`;
}

export function mountRunsPage(app: Express, o: RunsPageOptions): void {
  // The outcome of a button, shown once on the page it redirects to (post/redirect/get).
  const flashes = new Map<string, string>();
  const guard = requireSession(o.sessions);

  const show = async (_req: Request, res: Response) => {
    const { session, csrf } = authed(res);
    const [runs, failures, paused] = await Promise.all([
      listRunSummaries(o.redis, o.prefix, { limit: 20 }),
      listFailed(o.redis, o.prefix),
      o.actions
        .pausedTenants()
        .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    ]);
    const flash = flashes.get(session.id);
    flashes.delete(session.id);
    res.type('html').send(
      page({
        title: 'Runs and failures',
        user: session.user,
        csrf,
        flash,
        body: markup`<h2>Tenants</h2>
          ${tenantsTable(o.actions.tenants, paused, csrf)}
          <h2>Failed invoices (${failures.length})</h2>
          ${failuresTable(failures, csrf)}
          <h2>Recent runs</h2>
          ${runsTable(runs, csrf)}`,
      }),
    );
  };
  app.get('/', guard, show);
  app.get('/runs', guard, show);

  const action =
    (run: (user: string, body: Record<string, string | undefined>) => Promise<ActionOutcome>) =>
    async (req: Request, res: Response) => {
      const { session } = authed(res);
      const body = Object.fromEntries(
        Object.entries((req.body ?? {}) as Record<string, unknown>).map(([k, v]) => [
          k,
          typeof v === 'string' && v !== '' ? v : undefined,
        ]),
      );
      let outcome: ActionOutcome;
      try {
        outcome = await run(session.user, body);
      } catch (err) {
        if (!(err instanceof BadActionRequest)) throw err;
        res.status(400).type('text').send(err.message);
        return;
      }
      flashes.set(session.id, `${outcome.ok ? '' : 'Failed: '}${outcome.message}`);
      res.redirect(303, '/');
    };
  const required = (v: string | undefined, what: string): string => {
    if (v === undefined) throw new BadActionRequest(`${what} missing`);
    return v;
  };
  app.post(
    '/actions/retry-invoice',
    guard,
    action((u, b) => o.actions.retryInvoice(u, required(b.jobId, 'jobId'))),
  );
  app.post(
    '/actions/retry-run',
    guard,
    action((u, b) => o.actions.retryRun(u, required(b.runId, 'runId'))),
  );
  app.post(
    '/actions/pause',
    guard,
    action((u, b) => o.actions.pause(u, b.tenant)),
  );
  app.post(
    '/actions/resume',
    guard,
    action((u, b) => o.actions.resume(u, b.tenant)),
  );
}
