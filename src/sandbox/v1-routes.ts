// CSC API v1.0.4.0 under `/csc/v1`: adapters that read v1 requests, hand them to the v2 handlers (so
// tokens, SADs, locks, TOTP replay rules and stats are one and the same) and answer in v1's shapes.
// What differs (CSC v1.0.4.0 section 11): info says `specs: "1.0.4.0"`; credentials/info has no `auth`
// object but `authMode` and, with `authInfo`, the `PIN` and `OTP` groups (11.5); credentials/authorize
// takes `PIN` and `OTP` as top-level strings and binds SCAL2 SADs to a `hash` array (11.6);
// signatures/signHash takes `hash` and `hashAlgo` (11.9) and always needs a `SAD`. Errors keep the same
// `{error, error_description}` body (section 10), their descriptions naming the v1 parameters.
import { handleAuthorize } from './authorize-route';
import {
  ownedCredential,
  requireGrant,
  type RouteHandler,
  type RouteRequest,
  type RouteResult,
} from './context';
import { handleCredentialsInfo, handleCredentialsList, ONLINE_OTP_DESCRIPTION } from './credentials-routes';
import { CscProtocolError, cscErrors } from './csc-errors';
import { isPresent, optionalBoolean, optionalString, requireString, type Params } from './http-io';
import { IMPLEMENTED_METHODS, handleInfo } from './info-route';
import { OID } from './oids';
import { handleSignHash } from './sign-hash-route';

export const V1_SPECS = '1.0.4.0';

/** Runs a v2 handler for a v1 request, renaming v2 parameter names in its refusals to v1's. */
function asV1(handler: RouteHandler): RouteHandler {
  return (r) => {
    try {
      return handler(r);
    } catch (err) {
      throw err instanceof CscProtocolError ? withV1Names(err) : err;
    }
  };
}

function withV1Names(err: CscProtocolError): CscProtocolError {
  const description = err.description
    .replace(/\b(parameter|array) hashes\b/g, '$1 hash')
    .replace(/\bhashes\[/g, 'hash[')
    .replace(/\bhashAlgorithmOID\b/g, 'hashAlgo');
  return description === err.description
    ? err
    : new CscProtocolError(err.status, err.error, description, err.headers);
}

/** Only the named parameters, those present. */
function pick(params: Params, names: readonly string[]): Params {
  return Object.fromEntries(names.filter((n) => isPresent(params, n)).map((n) => [n, params[n]]));
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** 11.1 info: the v1 output fields only. */
export const handleInfoV1: RouteHandler = (r) => {
  const v2 = record(handleInfo(r).body);
  return {
    body: {
      specs: V1_SPECS,
      name: v2.name,
      logo: v2.logo,
      region: v2.region,
      lang: v2.lang,
      description: 'Local CSC API v1.0.4 stand-in for remote e-seal tests and demos; test keys only',
      authType: v2.authType,
      oauth2: v2.oauth2,
      methods: IMPLEMENTED_METHODS,
    },
  };
};

/** 11.4 credentials/list: `userID`, `maxResults`, `pageToken`, `clientData`; answers `credentialIDs`. */
export const handleCredentialsListV1: RouteHandler = asV1((r) => {
  optionalString(r.params, 'clientData');
  const maxResults = r.params.maxResults ?? undefined;
  if (maxResults !== undefined && !(typeof maxResults === 'number' && Number.isSafeInteger(maxResults))) {
    throw cscErrors.missingParam('maxResults', 'integer');
  }
  if (maxResults !== undefined && maxResults < 1) throw cscErrors.invalidParam('maxResults');
  // The page token is this sandbox's own: the index of the next credential, as decimal digits.
  const pageToken = optionalString(r.params, 'pageToken');
  if (pageToken !== undefined && !/^\d{1,9}$/.test(pageToken)) throw cscErrors.invalidParam('pageToken');
  const start = pageToken === undefined ? 0 : Number(pageToken);
  const all = record(handleCredentialsList({ ...r, params: pick(r.params, ['userID']) }).body).credentialIDs;
  const ids = Array.isArray(all) ? (all as string[]) : [];
  const end = maxResults === undefined ? ids.length : start + maxResults;
  return {
    body: {
      credentialIDs: ids.slice(start, end),
      ...(end < ids.length ? { nextPageToken: String(end) } : {}),
    },
  };
});

/**
 * 11.5 credentials/info: `certificates`, `certInfo`, `authInfo` as in v2; the answer has `authMode` and,
 * for an explicit credential asked with `authInfo`, the PIN and OTP groups (presence "true" both: the
 * sandbox's credentials need PIN AND OTP). An offline OTP is one the client computes itself (TOTP); an
 * online one (SandboxOptions.onlineOtp) "is generated online by the remote service when the client
 * invokes the credentials/sendOTP method" (send-otp-route.ts).
 */
export const handleCredentialsInfoV1: RouteHandler = asV1((r) => {
  const grant = requireGrant(r);
  const cred = ownedCredential(r.ctx, grant, requireString(r.params, 'credentialID'));
  optionalString(r.params, 'clientData');
  const authInfo = optionalBoolean(r.params, 'authInfo') ?? false;
  const params = pick(r.params, ['credentialID', 'certificates', 'certInfo', 'lang']);
  const v2 = record(handleCredentialsInfo({ ...r, params }).body);
  const explicit = cred.public.authMode !== 'implicit';
  const body: Record<string, unknown> = {
    description: v2.description,
    key: v2.key,
    cert: v2.cert,
    authMode: explicit ? 'explicit' : 'implicit',
    SCAL: String(cred.public.scal),
  };
  if (explicit && authInfo) {
    body.PIN = { presence: 'true', format: 'N', label: 'PIN', description: 'The 6-digit e-seal PIN' };
    body.OTP = r.ctx.onlineOtp.isOnline(cred.public.credentialId)
      ? {
          presence: 'true',
          type: 'online',
          ID: `${cred.public.credentialId}-sms`,
          provider: 'sms',
          format: 'N',
          label: 'OTP',
          description: ONLINE_OTP_DESCRIPTION,
        }
      : {
          presence: 'true',
          type: 'offline',
          ID: `${cred.public.credentialId}-totp`,
          provider: 'totp',
          format: 'N',
          label: 'OTP',
          description: `The 6-digit TOTP code (RFC 6238, SHA-1, ${r.ctx.totp.periodSec} s); each code is accepted once`,
        };
  }
  body.multisign = cred.public.multisign;
  body.lang = v2.lang ?? 'en-US';
  return { body };
});

/**
 * 11.6 credentials/authorize: `PIN` and `OTP` "SHALL be used only when authMode is explicit"; `hash`
 * is required under SCAL2 (and binds the SAD whenever it is sent). `description` is at most 500
 * characters. Translated to v2's `authData` and `hashes` + `hashAlgorithmOID` (v1 hashes are SHA-256 here).
 */
export const handleAuthorizeV1: RouteHandler = asV1((r) => {
  const { params } = r;
  const grant = requireGrant(r);
  const cred = ownedCredential(r.ctx, grant, requireString(params, 'credentialID'));
  const description = optionalString(params, 'description');
  if (description !== undefined && description.length > 500) {
    throw cscErrors.invalidParam('description', 'longer than 500 characters');
  }
  optionalString(params, 'clientData');
  const v2: Params = pick(params, ['credentialID', 'numSignatures']);
  if (cred.public.scal === 2 || isPresent(params, 'hash')) {
    v2.hashes = params.hash;
    v2.hashAlgorithmOID = OID.sha256;
  }
  if (cred.public.authMode === 'implicit') {
    for (const name of ['PIN', 'OTP']) {
      if (isPresent(params, name)) {
        throw cscErrors.invalidParam(
          name,
          `credential ${cred.public.credentialId} uses implicit authorisation and takes no ${name}`,
        );
      }
    }
  } else {
    v2.authData = [
      { id: 'PIN', value: requireString(params, 'PIN') },
      { id: 'OTP', value: requireString(params, 'OTP') },
    ];
  }
  return handleAuthorize({ ...r, params: v2 });
});

/** 11.9 signatures/signHash: `SAD` (required), `hash`, `hashAlgo`, `signAlgo`, `signAlgoParams`. */
export const handleSignHashV1: RouteHandler = asV1((r: RouteRequest): RouteResult => {
  const { params } = r;
  requireString(params, 'credentialID');
  requireString(params, 'SAD');
  optionalString(params, 'clientData');
  const v2: Params = pick(params, ['credentialID', 'SAD', 'signAlgo', 'signAlgoParams']);
  if (isPresent(params, 'hash')) v2.hashes = params.hash;
  if (isPresent(params, 'hashAlgo')) v2.hashAlgorithmOID = params.hashAlgo;
  return handleSignHash({ ...r, params: v2, credentialToken: undefined });
});
