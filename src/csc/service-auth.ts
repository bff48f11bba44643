// Service authorisation: the access token every CSC call carries, obtained the way the provider
// profile says — OAuth2 client credentials at `<oauth2 base>/oauth2/token`, CSC `auth/login` with HTTP
// Basic, or a long-lived token the provider issued (static bearer). Owns caching the token, refreshing
// it before it expires and dropping it when the provider answers 401. No secret (client secret,
// password, token) is ever logged or put into an error.
import { CscError } from './csc-error';
import { postForm, postJson, type PostOptions, type RetryPolicy } from './http';

export type CscServiceAuth =
  | {
      kind: 'client_credentials';
      clientId: string;
      clientSecret: string;
      /** OAuth2 scope to ask for; none by default (CSC calls service authorisation scope "service"). */
      scope?: string;
    }
  | {
      /** CSC `auth/login` with `Authorization: Basic base64(username:password)`. */
      kind: 'basic';
      username: string;
      password: string;
    }
  | {
      /** A token the provider issued out of band; it cannot be refreshed, only replaced by its owner. */
      kind: 'bearer';
      token: string;
    };

/** RFC 6749 and CSC auth/login leave expires_in optional; assume an hour and let a 401 correct us. */
const DEFAULT_TOKEN_LIFETIME_MS = 3_600_000;

export interface ServiceTokenSourceOptions {
  auth: CscServiceAuth;
  /** Resolves the OAuth2 token endpoint (it depends on the provider's /info answer). */
  tokenUrl: () => Promise<string>;
  /** `<CSC base>/auth/login`. */
  loginUrl: string;
  timeoutMs: number;
  retry: RetryPolicy;
  now: () => number;
  /** Transport settings shared with the CSC calls (the extra-CA dispatcher). */
  dispatcher?: PostOptions['dispatcher'];
  /** Called once per token request sent. */
  onRequest?: () => void;
}

export class ServiceTokenSource {
  private cached?: { token: string; refreshAt: number };
  private inFlight?: Promise<string>;

  constructor(private readonly o: ServiceTokenSourceOptions) {
    const auth = o.auth as { kind?: unknown };
    if (auth.kind !== 'client_credentials' && auth.kind !== 'basic' && auth.kind !== 'bearer') {
      throw new CscError({
        endpoint: 'service auth',
        retryable: false,
        detail: 'unsupported service auth kind',
      });
    }
    if (o.auth.kind === 'basic' && o.auth.username.includes(':')) {
      // RFC 7617 section 2: a user-id containing a colon cannot be sent in Basic credentials.
      throw new CscError({ endpoint: 'auth/login', retryable: false, detail: 'username contains ":"' });
    }
  }

  /** False for a static bearer token: when the provider refuses it, asking again cannot help. */
  get refreshable(): boolean {
    return this.o.auth.kind !== 'bearer';
  }

  /** A token believed valid; concurrent callers share one token request. */
  async token(): Promise<string> {
    if (this.o.auth.kind === 'bearer') return this.o.auth.token;
    if (this.cached && this.o.now() < this.cached.refreshAt) return this.cached.token;
    this.inFlight ??= this.fetchToken().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Forget `token` (the provider refused it); a newer token fetched meanwhile is kept. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const started = this.o.now();
    const { body, endpoint } =
      this.o.auth.kind === 'basic' ? await this.login(this.o.auth) : await this.clientCredentials();
    const token = body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new CscError({ endpoint, retryable: false, detail: 'answer has no access_token' });
    }
    const type = body.token_type;
    if (typeof type === 'string' && type.toLowerCase() !== 'bearer') {
      throw new CscError({
        endpoint,
        retryable: false,
        detail: `token_type ${JSON.stringify(type.slice(0, 20))} is not Bearer`,
      });
    }
    const expiresIn = Number(body.expires_in);
    const lifetime =
      Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_TOKEN_LIFETIME_MS;
    // Refresh a little early so a call never leaves with a token that expires on the way.
    const margin = Math.min(30_000, lifetime / 10);
    this.cached = { token, refreshAt: started + lifetime - margin };
    return token;
  }

  private async clientCredentials() {
    const auth = this.o.auth as Extract<CscServiceAuth, { kind: 'client_credentials' }>;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: auth.clientId,
      client_secret: auth.clientSecret,
    });
    if (auth.scope) form.set('scope', auth.scope);
    const endpoint = 'oauth2/token';
    const { body } = await postForm(await this.o.tokenUrl(), form, this.postOptions(endpoint));
    return { body, endpoint };
  }

  /**
   * CSC `auth/login`: the credentials travel only in the Basic header (RFC 7617: UTF-8, not
   * form-encoded as OAuth2 client authentication is). No `rememberMe`: a refresh token would be one
   * more secret to keep, and logging in again with the password does the same job.
   */
  private async login(auth: Extract<CscServiceAuth, { kind: 'basic' }>) {
    const endpoint = 'auth/login';
    const basic = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
    const { body } = await postJson(
      this.o.loginUrl,
      {},
      { ...this.postOptions(endpoint), authorization: `Basic ${basic}` },
    );
    return { body, endpoint };
  }

  private postOptions(endpoint: string): PostOptions {
    return {
      endpoint,
      onSend: this.o.onRequest,
      timeoutMs: this.o.timeoutMs,
      retry: this.o.retry,
      dispatcher: this.o.dispatcher,
    };
  }
}
