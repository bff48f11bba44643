// The login form and what guards every other page: a constant-time check of user and password, a
// delay after each failure and a lock-out of a client that keeps failing, the signed session cookie,
// and the middleware that sends a browser without a session to /login (an API client gets 401) and
// refuses a POST whose CSRF token is not its session's.
import type { Express, NextFunction, Request, Response } from 'express';
import type { Logger } from '../common/logger';
import { markup, page } from './html';
import { SESSION_COOKIE, cookieValue, equalText, type Session, type SessionKeeper } from './session';

export interface LoginOptions {
  user: string;
  password: string;
  sessions: SessionKeeper;
  logger: Logger;
  /** delay before answering a failed login (default 400 ms) */
  failureDelayMs?: number;
  /** failures from one client within `windowMs` that lock it out for `windowMs` (default 10, 15 min) */
  maxFailures?: number;
  windowMs?: number;
}

interface Failures {
  count: number;
  since: number;
}

export interface Authed {
  session: Session;
  csrf: string;
}

/** The signed-in session a request carries (set by requireSession). */
export function authed(res: Response): Authed {
  return res.locals.authed as Authed;
}

/** Only a path on this site: `next=//evil.example` or an absolute URL would be an open redirect. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.includes('\\')
    ? next
    : '/';
}

function loginPage(next: string, error?: string): string {
  return page({
    title: 'Log in',
    body: markup`${error ? markup`<p class="error" id="login-error">${error}</p>` : ''}
      <form method="post" action="/login" id="login">
        <input type="hidden" name="next" value="${next}" />
        <p>
          <label>User <input name="user" id="user" autocomplete="username" required /></label>
        </p>
        <p>
          <label
            >Password <input name="password" id="password" type="password" autocomplete="current-password"
          /></label>
        </p>
        <p><button type="submit" id="login-submit">Log in</button></p>
      </form>`,
  });
}

export function mountLogin(app: Express, o: LoginOptions): void {
  const delayMs = o.failureDelayMs ?? 400;
  const maxFailures = o.maxFailures ?? 10;
  const windowMs = o.windowMs ?? 15 * 60_000;
  const failures = new Map<string, Failures>();

  app.get('/login', (req, res) => {
    res.type('html').send(loginPage(safeNext(req.query.next)));
  });

  app.post('/login', async (req, res) => {
    const client = req.ip ?? 'unknown';
    const now = Date.now();
    const f = failures.get(client);
    if (f && now - f.since > windowMs) failures.delete(client);
    const next = safeNext((req.body as Record<string, unknown> | undefined)?.next);
    if ((failures.get(client)?.count ?? 0) >= maxFailures) {
      o.logger.warn({ client }, 'dashboard login refused: too many failures');
      res.status(429).type('html').send(loginPage(next, 'Too many failed logins; try again later.'));
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const user = typeof body.user === 'string' ? body.user : '';
    const password = typeof body.password === 'string' ? body.password : '';
    // Both compared every time, so the time taken does not tell a wrong user from a wrong password.
    const userOk = equalText(user, o.user);
    const passwordOk = equalText(password, o.password);
    if (!(userOk && passwordOk) || password === '') {
      const entry = failures.get(client) ?? { count: 0, since: now };
      entry.count++;
      failures.set(client, entry);
      // The user name is logged to see who is being tried; a typed password never is.
      o.logger.warn({ client, user, failures: entry.count }, 'dashboard login failed');
      await new Promise((r) => setTimeout(r, delayMs));
      res.status(401).type('html').send(loginPage(next, 'Wrong user or password.'));
      return;
    }
    failures.delete(client);
    const { cookie } = o.sessions.issue(o.user);
    o.logger.info({ client, user: o.user }, 'dashboard login');
    res.setHeader('Set-Cookie', o.sessions.cookieHeader(cookie));
    res.redirect(303, next);
  });

  app.post('/logout', requireSession(o.sessions), (req, res) => {
    const { session } = authed(res);
    o.sessions.revoke(session);
    o.logger.info({ user: session.user }, 'dashboard logout');
    res.setHeader('Set-Cookie', o.sessions.cookieHeader('', 0));
    res.redirect(303, '/login');
  });
}

/** Whether the request comes from a browser page (redirect it) rather than a script or XHR (401). */
function wantsPage(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.get('accept') ?? '').includes('text/html');
}

/**
 * Needs a signed-in session; a POST also needs the session's CSRF token (form field `csrf` or header
 * `x-csrf-token`).
 */
export function requireSession(sessions: SessionKeeper) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const session = sessions.read(cookieValue(req.get('cookie'), SESSION_COOKIE));
    if (!session) {
      if (wantsPage(req)) res.redirect(302, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      else res.status(401).json({ error: 'login required' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const token = (req.body as Record<string, unknown> | undefined)?.csrf ?? req.get('x-csrf-token');
      if (!sessions.checkCsrf(session, token)) {
        res.status(403).json({ error: 'missing or wrong CSRF token' });
        return;
      }
    }
    res.locals.authed = { session, csrf: sessions.csrfToken(session) } satisfies Authed;
    next();
  };
}
