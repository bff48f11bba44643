// Service authorisation: the OAuth2 client-credentials access token that every CSC call carries.
// Owns fetching it from `<oauth2 base>/oauth2/token`, caching it, refreshing it before it expires and
// dropping it when the provider answers 401. The token and the client secret are never logged.
import { CscError } from './csc-error';
import { postForm, type RetryPolicy } from './http';

export type CscServiceAuth = {
  kind: 'client_credentials';
  clientId: string;
  clientSecret: string;
  /** OAuth2 scope to ask for; none by default (CSC calls service authorisation scope "service"). */
  scope?: string;
};

/** RFC 6749 leaves expires_in optional; assume an hour and let a 401 correct us. */
const DEFAULT_TOKEN_LIFETIME_MS = 3_600_000;

export interface ServiceTokenSourceOptions {
  auth: CscServiceAuth;
  /** Resolves the token endpoint (it depends on the provider's /info answer). */
  tokenUrl: () => Promise<string>;
  timeoutMs: number;
  retry: RetryPolicy;
  now: () => number;
  /** Called once per token request sent. */
  onRequest?: () => void;
}

export class ServiceTokenSource {
  private cached?: { token: string; refreshAt: number };
  private inFlight?: Promise<string>;

  constructor(private readonly o: ServiceTokenSourceOptions) {
    if (o.auth.kind !== 'client_credentials') {
      throw new CscError({
        endpoint: 'oauth2/token',
        retryable: false,
        detail: `unsupported service auth kind`,
      });
    }
  }

  /** A token believed valid; concurrent callers share one token request. */
  async token(): Promise<string> {
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
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.o.auth.clientId,
      client_secret: this.o.auth.clientSecret,
    });
    if (this.o.auth.scope) form.set('scope', this.o.auth.scope);
    const started = this.o.now();
    const url = await this.o.tokenUrl();
    const { body } = await postForm(url, form, {
      endpoint: 'oauth2/token',
      onSend: this.o.onRequest,
      timeoutMs: this.o.timeoutMs,
      retry: this.o.retry,
    });
    const token = body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new CscError({
        endpoint: 'oauth2/token',
        retryable: false,
        detail: 'answer has no access_token',
      });
    }
    const type = body.token_type;
    if (typeof type === 'string' && type.toLowerCase() !== 'bearer') {
      throw new CscError({
        endpoint: 'oauth2/token',
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
}
