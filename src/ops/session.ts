// The dashboard's login session: a cookie holding the user, an expiry and a random session ID, signed
// with HMAC-SHA256 under a key made fresh per process (a restart signs everyone out, which is fine for
// an ops page), so nothing is stored server-side but the IDs logged out early. The CSRF token of a
// session is an HMAC of its ID: a page carries it in each form, and a POST without it is refused.
import crypto from 'node:crypto';

export const SESSION_COOKIE = 'sealer_ops';

export interface Session {
  user: string;
  /** random, per login */
  id: string;
  /** ms since the epoch */
  expiresAt: number;
}

export interface SessionKeeperOptions {
  /** how long a login lasts (default 8 hours: a shift) */
  ttlMs?: number;
  now?: () => number;
}

export class SessionKeeper {
  private readonly key = crypto.randomBytes(32);
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** session IDs logged out before their expiry, with that expiry (dropped once it passes) */
  private readonly revoked = new Map<string, number>();

  constructor(options: SessionKeeperOptions = {}) {
    this.ttlMs = options.ttlMs ?? 8 * 3600_000;
    this.now = options.now ?? Date.now;
  }

  /** A new session for `user` and the cookie value that carries it. */
  issue(user: string): { session: Session; cookie: string } {
    const session: Session = {
      user,
      id: crypto.randomBytes(16).toString('base64url'),
      expiresAt: this.now() + this.ttlMs,
    };
    const body = Buffer.from(JSON.stringify(session)).toString('base64url');
    return { session, cookie: `${body}.${this.mac(`session:${body}`)}` };
  }

  /** The session a cookie value carries, if its signature holds and it has not expired or logged out. */
  read(cookie: string | undefined): Session | undefined {
    if (!cookie) return undefined;
    const dot = cookie.indexOf('.');
    if (dot < 1) return undefined;
    const body = cookie.slice(0, dot);
    if (!equalText(cookie.slice(dot + 1), this.mac(`session:${body}`))) return undefined;
    let s: Session;
    try {
      s = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Session;
    } catch {
      return undefined;
    }
    if (typeof s.user !== 'string' || typeof s.id !== 'string' || typeof s.expiresAt !== 'number')
      return undefined;
    if (s.expiresAt <= this.now() || this.revoked.has(s.id)) return undefined;
    return s;
  }

  revoke(session: Session): void {
    const now = this.now();
    for (const [id, exp] of this.revoked) if (exp <= now) this.revoked.delete(id);
    this.revoked.set(session.id, session.expiresAt);
  }

  csrfToken(session: Session): string {
    return this.mac(`csrf:${session.id}`);
  }

  checkCsrf(session: Session, token: unknown): boolean {
    return typeof token === 'string' && equalText(token, this.csrfToken(session));
  }

  /** Set-Cookie attributes: not readable by scripts, never sent from another site, the whole app. */
  cookieHeader(value: string, maxAgeSec = Math.floor(this.ttlMs / 1000)): string {
    return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSec}`;
  }

  private mac(text: string): string {
    return crypto.createHmac('sha256', this.key).update(text).digest('base64url');
  }
}

/**
 * Constant-time equality of two strings of any length: both are hashed first, so neither the
 * position of the first difference nor a length difference shows in the time taken.
 */
export function equalText(a: string, b: string): boolean {
  const da = crypto.createHash('sha256').update(a, 'utf8').digest();
  const db = crypto.createHash('sha256').update(b, 'utf8').digest();
  return crypto.timingSafeEqual(da, db);
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
