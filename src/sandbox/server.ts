// startSandbox: loads or provisions dataDir, then serves the CSC v2 API (and v1.0.4 under /csc/v1, see
// v1-routes.ts, on the same state) and the OAuth2 token endpoint
// over node:http (node:https with `tls`, under a server certificate from the sandbox's own root). This module owns routing, Bearer checks, latency, counters and request logging
// (method, path, status, client and credential IDs only: never bodies, tokens or SADs), and carries out
// the injected faults that happen around a route (status answers, latency, hangs, dropped connections;
// fault-injector.ts decides them, fault-control-route.ts serves GET/POST /sandbox/faults). Also the PKI
// endpoints (pki-routes.ts): the TSA (`/tsa`, CSC signatures/timestamp), OCSP, the CRL and the root
// certificate, whose URLs the certificates name once the listening origin is known (pki-material.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger } from '../common/logger';
import { handleAuthLogin } from './auth-login-route';
import { handleAuthorizePage } from './authorize-page-route';
import { handleAuthorize } from './authorize-route';
import { AuthorizationCodeStore, PendingApprovals } from './code-store';
import {
  authenticateBearer,
  OnlineOtpStore,
  type RouteFaults,
  type RouteHandler,
  type RouteResult,
  type SandboxContext,
} from './context';
import { CredentialLock } from './credential-lock';
import { CredentialTokenStore } from './credential-token-store';
import { handleCredentialsInfo, handleCredentialsList } from './credentials-routes';
import { CscProtocolError, cscErrors } from './csc-errors';
import { FAULTS_PATH, handleFaultControl } from './fault-control-route';
import { delayUnlessClosed, dropConnection, hangUntilClosed, statusRefusal } from './fault-effects';
import { FaultInjector, type FaultDecision, type FaultSite } from './fault-injector';
import { parseFormOrJsonParams, parseJsonParams, readBody, renderRouteResult, writeAnswer } from './http-io';
import { handleInfo } from './info-route';
import { handleToken } from './oauth2-route';
import { preparePki, rotateTsa, type PkiMaterial } from './pki-material';
import {
  CRL_PATH,
  handleCrl,
  handleOcsp,
  handleRootCert,
  handleTimestamp,
  handleTsa,
  OCSP_PATH,
  ROOT_CERT_PATH,
  TSA_PATH,
} from './pki-routes';
import { loadOrProvision, loadOrProvisionTls, tlsServerNames } from './provisioning';
import { isRevocationReason, type Revocation } from './revocation-store';
import { SadStore } from './sad-store';
import { SandboxError } from './sandbox-error';
import { handleSendOtp, handleSendOtpV1 } from './send-otp-route';
import { handleSignHash } from './sign-hash-route';
import { TokenStore } from './token-store';
import { TotpVerifier } from './totp-verifier';
import type { FaultEndpoint, SandboxHandle, SandboxOptions, SandboxStats } from './types';
import {
  handleAuthorizeV1,
  handleCredentialsInfoV1,
  handleCredentialsListV1,
  handleInfoV1,
  handleSignHashV1,
} from './v1-routes';

interface Route {
  methods: readonly string[];
  /** true: needs `Authorization: Bearer <token>`. */
  bearer: boolean;
  /** With `bearer`: a credential-scope token (from the approval page's code) is accepted too. */
  credentialScope?: boolean;
  form: boolean;
  stat?: keyof SandboxStats;
  /** What fault rules call this endpoint; absent: never gets faults. */
  endpoint?: FaultEndpoint;
  /** The fault control endpoint: not slowed by `latencyMs` either. */
  control?: boolean;
  /** A binary PKI route: the handler reads the raw body, no JSON parameters. */
  raw?: boolean;
  /** A TSA route: slowed by `tsaLatencyMs` too, and down while `setTsaOutage(true)`. */
  tsa?: boolean;
  handler: RouteHandler;
}

const CSC = '/csc/v2';
const CSC_V1 = '/csc/v1';
const ROUTES: Record<string, Route> = {
  '/oauth2/token': {
    methods: ['POST'],
    bearer: false,
    form: true,
    stat: 'token',
    endpoint: 'oauth2/token',
    handler: handleToken,
  },
  // The provider's approval page (HTML form; answers with pages and redirects, not JSON).
  '/oauth2/authorize': { methods: ['GET', 'POST'], bearer: false, form: true, handler: handleAuthorizePage },
  [`${CSC}/auth/login`]: {
    methods: ['POST'],
    bearer: false,
    form: false,
    stat: 'token',
    endpoint: 'auth/login',
    handler: handleAuthLogin,
  },
  [`${CSC}/info`]: {
    methods: ['POST', 'GET'],
    bearer: false,
    form: false,
    stat: 'info',
    endpoint: 'info',
    handler: handleInfo,
  },
  [`${CSC}/credentials/list`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    endpoint: 'credentials/list',
    handler: handleCredentialsList,
  },
  [`${CSC}/credentials/info`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'credentialsInfo',
    endpoint: 'credentials/info',
    handler: handleCredentialsInfo,
  },
  [`${CSC}/credentials/authorize`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'authorize',
    endpoint: 'credentials/authorize',
    handler: handleAuthorize,
  },
  [`${CSC}/credentials/sendOTP`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    endpoint: 'credentials/sendOTP',
    handler: handleSendOtp,
  },
  [`${CSC}/signatures/signHash`]: {
    methods: ['POST'],
    bearer: true,
    credentialScope: true,
    form: false,
    stat: 'signHash',
    endpoint: 'signatures/signHash',
    handler: handleSignHash,
  },
  // CSC v1.0.4.0: the same methods in v1's request and answer shapes; no credential-scope tokens.
  [`${CSC_V1}/auth/login`]: {
    methods: ['POST'],
    bearer: false,
    form: false,
    stat: 'token',
    endpoint: 'auth/login',
    handler: handleAuthLogin,
  },
  [`${CSC_V1}/info`]: {
    methods: ['POST', 'GET'],
    bearer: false,
    form: false,
    stat: 'info',
    endpoint: 'info',
    handler: handleInfoV1,
  },
  [`${CSC_V1}/credentials/list`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    endpoint: 'credentials/list',
    handler: handleCredentialsListV1,
  },
  [`${CSC_V1}/credentials/info`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'credentialsInfo',
    endpoint: 'credentials/info',
    handler: handleCredentialsInfoV1,
  },
  [`${CSC_V1}/credentials/authorize`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'authorize',
    endpoint: 'credentials/authorize',
    handler: handleAuthorizeV1,
  },
  [`${CSC_V1}/credentials/sendOTP`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    endpoint: 'credentials/sendOTP',
    handler: handleSendOtpV1,
  },
  [`${CSC_V1}/signatures/signHash`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'signHash',
    endpoint: 'signatures/signHash',
    handler: handleSignHashV1,
  },
  [`${CSC}/signatures/timestamp`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'timestamp',
    endpoint: 'signatures/timestamp',
    tsa: true,
    handler: handleTimestamp,
  },
  [`${CSC_V1}/signatures/timestamp`]: {
    methods: ['POST'],
    bearer: true,
    form: false,
    stat: 'timestamp',
    endpoint: 'signatures/timestamp',
    tsa: true,
    handler: handleTimestamp,
  },
  // RFC 3161 over HTTP, RFC 6960, RFC 5280: no authentication, as the URLs in certificates need.
  [TSA_PATH]: {
    methods: ['POST'],
    bearer: false,
    form: false,
    raw: true,
    stat: 'tsa',
    endpoint: 'tsa',
    tsa: true,
    handler: handleTsa,
  },
  [OCSP_PATH]: {
    methods: ['POST', 'GET'],
    bearer: false,
    form: false,
    raw: true,
    stat: 'ocsp',
    endpoint: 'ocsp',
    handler: handleOcsp,
  },
  [CRL_PATH]: {
    methods: ['GET'],
    bearer: false,
    form: false,
    raw: true,
    stat: 'crl',
    endpoint: 'crl',
    handler: handleCrl,
  },
  [ROOT_CERT_PATH]: { methods: ['GET'], bearer: false, form: false, raw: true, handler: handleRootCert },
  [FAULTS_PATH]: {
    methods: ['GET', 'POST'],
    bearer: false,
    form: false,
    control: true,
    handler: handleFaultControl,
  },
};

type Defaulted = Required<
  Omit<
    SandboxOptions,
    | 'dataDir'
    | 'multisign'
    | 'benchTenant'
    | 'logger'
    | 'publicUrl'
    | 'now'
    | 'totpNow'
    | 'onlineOtp'
    | 'faults'
    | 'pkiBaseUrl'
  >
>;

const DEFAULTS: Defaulted = {
  host: '127.0.0.1',
  port: 0,
  latencyMs: 0,
  ecdsaSignatureFormat: 'der',
  sadLifetimeSec: 3600,
  tokenLifetimeSec: 3600,
  maxHashesPerCall: 100,
  lockAfterFailures: 5,
  lockSeconds: 300,
  totpPeriodSec: 30,
  tls: false,
  tsaCertificateDays: 3650,
  tsaLatencyMs: 0,
  crlOnlyCredentials: ['sakura-eseal-implicit'],
};

function zeroStats(): SandboxStats {
  return {
    token: 0,
    info: 0,
    credentialsInfo: 0,
    authorize: 0,
    signHash: 0,
    signatures: 0,
    errors: 0,
    timestamp: 0,
    tsa: 0,
    ocsp: 0,
    crl: 0,
  };
}

export async function startSandbox(options: SandboxOptions): Promise<SandboxHandle> {
  const o = { ...DEFAULTS, ...definedOnly(options) };
  checkOptions(o);
  const logger = options.logger ?? createLogger({ name: 'sandbox' });
  const state = await loadOrProvision(options.dataDir, options.multisign, {
    benchTenant: options.benchTenant,
  });
  if (state.provisioned) logger.info({ dataDir: options.dataDir }, 'sandbox: provisioned a new dataDir');
  const faults = new FaultInjector(logger, options.faults, options.now);

  // One clock for every lifetime (real time unless a test injects its own), so that expiry, lockout
  // and the codes' lives all move together when a test moves time forward.
  const now = options.now ?? Date.now;
  let pki: PkiMaterial | undefined;
  const ctx: SandboxContext = {
    state,
    tokens: new TokenStore(o.tokenLifetimeSec * 1000, now),
    sads: new SadStore(o.sadLifetimeSec * 1000, now, () => faults.sadExpiredEarly()),
    codes: new AuthorizationCodeStore(undefined, now),
    approvals: new PendingApprovals(undefined, now),
    // A credential-scope token stands in for a SAD, so it lives as long as one.
    credentialTokens: new CredentialTokenStore(o.sadLifetimeSec * 1000, now),
    lock: new CredentialLock(o.lockAfterFailures, o.lockSeconds * 1000, now),
    totp: new TotpVerifier(o.totpPeriodSec, options.totpNow ?? now),
    onlineOtp: new OnlineOtpStore(
      options.onlineOtp ?? [],
      state.credentials,
      path.join(options.dataDir, 'outbox-otp'),
      undefined,
      now,
    ),
    stats: zeroStats(),
    faults,
    logger,
    ecdsaSignatureFormat: o.ecdsaSignatureFormat,
    maxHashesPerCall: o.maxHashesPerCall,
    oauth2Url: '', // known once listening
    now,
    pki: () => {
      if (pki === undefined) throw cscErrors.unavailable(1);
      return pki;
    },
    tsaDown: false,
  };
  // The default names a default credential; only a list the caller gave must name known ones.
  for (const id of options.crlOnlyCredentials ?? []) {
    if (!state.credentials.has(id)) {
      throw new SandboxError(
        `sandbox option crlOnlyCredentials names unknown credential ${JSON.stringify(id)}`,
      );
    }
  }
  // Each tenant's API token works as a Bearer token for its OAuth client, like an issued one.
  for (const t of state.tenantsByClientId.values()) ctx.tokens.allowStatic(t.apiToken, t.clientId, t.tenant);

  // Requests wait until the certificates name this start's URLs (a few ms after listening).
  let ready: Promise<void> = new Promise(() => undefined);
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    ready
      .then(() => handle(ctx, o, req, res))
      .catch((err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'sandbox: response failed');
        res.destroy();
      });
  };
  const tls = o.tls
    ? await loadOrProvisionTls(options.dataDir, tlsServerNames(o.host, options.publicUrl))
    : undefined;
  const server = tls ? createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, serve) : createServer(serve);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new SandboxError(`sandbox cannot listen on ${o.host}:${o.port}`, { cause: err })),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = o.host.includes(':') ? `[${o.host}]` : o.host;
  const scheme = tls ? 'https' : 'http';
  ctx.oauth2Url = options.publicUrl?.replace(/\/+$/, '') ?? `${scheme}://${hostPart}:${port}`;
  const url = `${ctx.oauth2Url}${CSC}`;
  // What certificates name for OCSP and CRL: where clients reach this sandbox (see types.ts pkiBaseUrl).
  const pkiBase = options.pkiBaseUrl?.replace(/\/+$/, '') ?? ctx.oauth2Url;
  const pkiReady = preparePki(options.dataDir, state, {
    base: pkiBase,
    tsaCertificateDays: o.tsaCertificateDays,
    crlOnlyCredentials: new Set(o.crlOnlyCredentials),
    now,
  });
  ready = pkiReady.then(() => undefined);
  try {
    pki = await pkiReady;
  } catch (err) {
    server.close();
    server.closeAllConnections();
    throw err instanceof SandboxError
      ? err
      : new SandboxError('sandbox cannot prepare its PKI', { cause: err });
  }
  const pkiNow = pki;
  logger.info({ url, credentials: state.credentials.size, pkiBase }, 'sandbox: listening');

  let closed: Promise<void> | undefined;
  return {
    url,
    oauth2Url: ctx.oauth2Url,
    rootCertPath: state.rootCertPath,
    rootCertPem: state.rootCertPem,
    tlsServerPath: tls?.path,
    credentials: [...state.credentials.values()].map((c) => ({
      ...c.public,
      totpPeriodSec: o.totpPeriodSec,
    })),
    stats: () => ({ ...ctx.stats }),
    resetStats: () => {
      ctx.stats = zeroStats();
    },
    issuedSecrets: () => [
      ...ctx.tokens.issuedValues(),
      ...ctx.sads.issuedValues(),
      ...ctx.credentialTokens.issuedValues(),
      ...ctx.codes.issuedValues(),
    ],
    faults: {
      replace: (plan, opts) => faults.replace(plan, opts),
      state: () => faults.state(),
    },
    tsaUrl: `${ctx.oauth2Url}${TSA_PATH}`,
    ocspUrl: `${ctx.oauth2Url}${OCSP_PATH}`,
    crlUrl: `${ctx.oauth2Url}${CRL_PATH}`,
    get tsaCertificatePem() {
      return pkiNow.tsa.certPem;
    },
    tsaCertificatePath: pkiNow.tsaCertPath,
    rotateTsaCertificate: async (days: number) => {
      await rotateTsa(options.dataDir, pkiNow, days, now());
      logger.info({ serial: pkiNow.tsa.serialHex, days }, 'sandbox: TSA certificate rotated');
      return pkiNow.tsa.certPem;
    },
    revoke: (credentialId, reason = 'unspecified', at) => {
      const cred = state.credentials.get(credentialId);
      if (cred === undefined)
        throw new SandboxError(`cannot revoke unknown credential ${JSON.stringify(credentialId)}`);
      if (!isRevocationReason(reason))
        throw new SandboxError(`unknown revocation reason ${JSON.stringify(reason)}`);
      const entry: Revocation = {
        serialHex: cred.public.certificateSerialHex,
        credentialId,
        revokedAt: at ?? new Date(now()),
        reason,
      };
      const held = pkiNow.revocations.revoke(entry);
      logger.info(
        { credentialID: credentialId, serial: held.serialHex, reason: held.reason },
        'sandbox: revoked',
      );
      return held.serialHex;
    },
    setTsaOutage: (down: boolean) => {
      ctx.tsaDown = down;
    },
    close: () => {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((err) =>
          err ? reject(new SandboxError('sandbox failed to close', { cause: err })) : resolve(),
        );
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** The route for a path: exact, or `/ocsp/<request>` (RFC 6960 A.1 GET). */
function routeFor(pathname: string): Route | undefined {
  return ROUTES[pathname] ?? (pathname.startsWith(`${OCSP_PATH}/`) ? ROUTES[OCSP_PATH] : undefined);
}

async function handle(ctx: SandboxContext, o: Defaulted, req: IncomingMessage, res: ServerResponse) {
  const started = Date.now();
  const method = req.method ?? 'GET';
  const pathname = new URL(req.url ?? '/', 'http://sandbox').pathname;
  const site: FaultSite = { method, path: pathname };
  const log: Record<string, unknown> = { method, path: pathname };
  let status: number;
  let responseBody: unknown;
  let page: RouteResult | undefined;
  let headers: Record<string, string> = {};
  let decision: FaultDecision | undefined;
  try {
    const body = await readBody(req);
    const route = routeFor(pathname);
    decision = route?.endpoint === undefined ? undefined : ctx.faults.decide(route.endpoint, site);
    const delayMs =
      (route?.control === true ? 0 : o.latencyMs) +
      (route?.tsa === true ? o.tsaLatencyMs : 0) +
      (decision?.latencyMs ?? 0);
    if (delayMs > 0 && !(await delayUnlessClosed(res, delayMs))) {
      // The client left while we waited: nothing to answer, and no other fault was carried out.
      ctx.faults.released(decision?.answer);
      ctx.faults.released(decision?.sadExpiry);
      return;
    }
    if (decision?.limited !== undefined) {
      // Over the provider's rate limit: refused before anything else happens to the request.
      ctx.faults.released(decision.answer);
      ctx.faults.released(decision.sadExpiry);
      throw cscErrors.tooManyRequests(decision.limited.retryAfterSec);
    }
    if (route === undefined) throw cscErrors.notFound(pathname);
    if (route.stat !== undefined) ctx.stats[route.stat] += 1;
    const answer = decision?.answer;
    // Faults that come before the provider looks at the request (a busy front end, a dead backend).
    if (decision !== undefined && answer !== undefined) {
      const rule = answer.rule;
      if (rule.fault === 'status') {
        ctx.faults.applied(decision.endpoint, answer, site);
        throw statusRefusal(rule);
      }
      if (rule.fault === 'hang') {
        ctx.faults.applied(decision.endpoint, answer, site);
        ctx.faults.hangStarted();
        await hangUntilClosed(res);
        ctx.faults.hangEnded();
        return;
      }
      if (rule.fault === 'drop' && rule.when === 'before') {
        ctx.faults.applied(decision.endpoint, answer, site);
        dropConnection(res);
        return;
      }
    }
    if (!route.methods.includes(method)) throw cscErrors.methodNotAllowed(method, route.methods.join(', '));
    if (route.tsa === true && ctx.tsaDown) throw cscErrors.unavailable();
    const bearer = route.bearer
      ? authenticateBearer(ctx, req.headers.authorization, route.credentialScope === true)
      : undefined;
    const grant = bearer?.grant;
    if (grant) log.clientId = grant.clientId;
    const params =
      route.raw === true ? {} : route.form ? parseFormOrJsonParams(req, body) : parseJsonParams(req, body);
    if (typeof params.credentialID === 'string') log.credentialID = params.credentialID.slice(0, 100);
    const result = route.handler({
      ctx,
      req,
      params,
      body,
      grant,
      credentialToken: bearer?.credentialToken,
      faults: routeFaults(decision),
    });
    status = result.status ?? 200;
    responseBody = result.body;
    page = result;
  } catch (err) {
    const protocolError =
      err instanceof CscProtocolError
        ? err
        : new CscProtocolError(500, 'server_error', 'The sandbox hit an unexpected condition');
    if (!(err instanceof CscProtocolError)) {
      ctx.logger.error(
        { ...log, err: err instanceof Error ? err.message : String(err) },
        'sandbox: internal error',
      );
    }
    status = protocolError.status;
    responseBody = protocolError.body();
    headers = protocolError.headers;
    ctx.stats.errors += 1;
    log.error = protocolError.error;
  }
  const rendered = renderRouteResult(status, page ?? { body: responseBody }, headers);
  if (decision !== undefined) {
    settleRouteFaults(ctx, decision, status, site);
    const rule = decision.answer?.rule;
    if (decision.answer !== undefined && rule?.fault === 'drop' && rule.when !== 'before') {
      // The provider did the work (a SAD may be spent) and the answer is lost on the way.
      ctx.faults.applied(decision.endpoint, decision.answer, site);
      dropConnection(res, rule.when === 'mid' ? rendered : undefined);
      return;
    }
  }
  writeAnswer(res, rendered);
  ctx.logger.debug({ ...log, status, ms: Date.now() - started }, 'sandbox: request');
}

/** The faults of a decision that a route carries out itself. */
function routeFaults(decision: FaultDecision | undefined): RouteFaults | undefined {
  if (decision === undefined) return undefined;
  const answer = decision.answer?.rule;
  const sad = decision.sadExpiry?.rule;
  return {
    signatures: answer?.fault === 'signatures' ? { mode: answer.mode, draw: decision.draw } : undefined,
    sadExpiry:
      sad === undefined
        ? undefined
        : { afterMs: sad.afterSec === undefined ? undefined : sad.afterSec * 1000, afterUses: sad.afterUses },
  };
}

/** Route-side faults count only when the route succeeded (a refused signHash has no signatures to spoil). */
function settleRouteFaults(
  ctx: SandboxContext,
  decision: FaultDecision,
  status: number,
  site: FaultSite,
): void {
  const routeSide = [
    decision.answer?.rule.fault === 'signatures' ? decision.answer : undefined,
    decision.sadExpiry,
  ];
  for (const chosen of routeSide) {
    if (chosen === undefined) continue;
    if (status < 400) ctx.faults.applied(decision.endpoint, chosen, site);
    else ctx.faults.released(chosen);
  }
}

function definedOnly<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkOptions(o: Defaulted & { dataDir?: string }): void {
  const positive = ['sadLifetimeSec', 'tokenLifetimeSec', 'lockSeconds'] as const;
  for (const k of positive) {
    if (!(Number.isFinite(o[k]) && o[k] > 0))
      throw new SandboxError(`sandbox option ${k} must be > 0, got ${o[k]}`);
  }
  const integers = ['maxHashesPerCall', 'lockAfterFailures'] as const;
  for (const k of integers) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) {
      throw new SandboxError(`sandbox option ${k} must be an integer >= 1, got ${o[k]}`);
    }
  }
  if (!(Number.isInteger(o.totpPeriodSec) && o.totpPeriodSec >= 1 && o.totpPeriodSec <= 3600)) {
    throw new SandboxError(
      `sandbox option totpPeriodSec must be an integer from 1 to 3600, got ${o.totpPeriodSec}`,
    );
  }
  if (!(Number.isFinite(o.latencyMs) && o.latencyMs >= 0)) {
    throw new SandboxError(`sandbox option latencyMs must be >= 0, got ${o.latencyMs}`);
  }
  if (!(Number.isFinite(o.tsaLatencyMs) && o.tsaLatencyMs >= 0)) {
    throw new SandboxError(`sandbox option tsaLatencyMs must be >= 0, got ${o.tsaLatencyMs}`);
  }
  if (!(
    Number.isInteger(o.tsaCertificateDays) &&
    o.tsaCertificateDays >= 1 &&
    o.tsaCertificateDays <= 36500
  )) {
    throw new SandboxError(
      `sandbox option tsaCertificateDays must be a whole number from 1 to 36500, got ${o.tsaCertificateDays}`,
    );
  }
  if (o.ecdsaSignatureFormat !== 'der' && o.ecdsaSignatureFormat !== 'raw') {
    throw new SandboxError(`sandbox option ecdsaSignatureFormat must be 'der' or 'raw'`);
  }
  if (typeof o.dataDir !== 'string' || o.dataDir === '')
    throw new SandboxError('sandbox option dataDir is required');
}
