// `credentials/list` and `credentials/info`: the caller's tenant's credentials, their keys, certificates
// (leaf first, then the root) and the authorisation they require: explicit "PIN AND OTP" (the OTP a
// TOTP, or online: sent by credentials/sendOTP), or implicit (no authentication objects: CSC returns
// `expression` and `objects` only for mode "explicit").
import { ownedCredential, requireGrant, type RouteRequest, type RouteResult } from './context';
import { cscErrors } from './csc-errors';
import { optionalBoolean, optionalString, requireString, type Params } from './http-io';
import { OID } from './oids';
import { certFacts, certStatus, type LoadedCredential } from './provisioning';

type CertificatesChoice = 'none' | 'single' | 'chain';

/** What credentials/info (v2 and v1) tells people about an online OTP. */
export const ONLINE_OTP_DESCRIPTION =
  'The 6-digit code sent to your device after credentials/sendOTP; valid 5 minutes, accepted once';

interface InfoWanted {
  certificates: CertificatesChoice;
  certInfo: boolean;
  authInfo: boolean;
}

export function handleCredentialsList(r: RouteRequest): RouteResult {
  const grant = requireGrant(r);
  const userId = optionalString(r.params, 'userID');
  // oauth2client is not user-specific: a userID, if sent, must name the client's own account (tenant).
  if (userId !== undefined && userId !== grant.tenant) throw cscErrors.invalidParam('userID');
  const withInfo = optionalBoolean(r.params, 'credentialInfo') ?? false;
  const wanted = infoWanted(r.params);
  const onlyValid = optionalBoolean(r.params, 'onlyValid') ?? false;

  const owned = [...r.ctx.state.credentials.values()].filter(
    (c) => c.public.tenant === grant.tenant && (!onlyValid || certStatus(c) === 'valid'),
  );
  const body: Record<string, unknown> = { credentialIDs: owned.map((c) => c.public.credentialId) };
  if (withInfo) {
    body.credentialInfos = owned.map((c) => ({
      credentialID: c.public.credentialId,
      ...credentialInfo(c, wanted, r.ctx.totp.periodSec, r.ctx.onlineOtp.isOnline(c.public.credentialId)),
    }));
  }
  if (onlyValid) body.onlyValid = true;
  return { body };
}

export function handleCredentialsInfo(r: RouteRequest): RouteResult {
  const grant = requireGrant(r);
  const cred = ownedCredential(r.ctx, grant, requireString(r.params, 'credentialID'));
  optionalString(r.params, 'lang');
  const online = r.ctx.onlineOtp.isOnline(cred.public.credentialId);
  return { body: credentialInfo(cred, infoWanted(r.params), r.ctx.totp.periodSec, online) };
}

function infoWanted(params: Params): InfoWanted {
  const certificates = optionalString(params, 'certificates') ?? 'single';
  if (certificates !== 'none' && certificates !== 'single' && certificates !== 'chain') {
    throw cscErrors.invalidParam('certificates');
  }
  return {
    certificates,
    certInfo: optionalBoolean(params, 'certInfo') ?? false,
    authInfo: optionalBoolean(params, 'authInfo') ?? false,
  };
}

export function credentialInfo(
  cred: LoadedCredential,
  wanted: InfoWanted,
  totpPeriodSec: number,
  onlineOtp = false,
): Record<string, unknown> {
  const pub = cred.public;
  const key: Record<string, unknown> = { status: 'enabled', algo: [...cred.signAlgos], len: cred.keyLength };
  if (pub.keyType === 'ecdsa-p256') key.curve = OID.prime256v1;

  const cert: Record<string, unknown> = { status: certStatus(cred) };
  if (wanted.certificates !== 'none') {
    const ders = wanted.certificates === 'chain' ? cred.chainDer : cred.chainDer.slice(0, 1);
    cert.certificates = ders.map((d) => d.toString('base64'));
  }
  if (wanted.certInfo) Object.assign(cert, certFacts(cred));

  const implicit = pub.authMode === 'implicit';
  return {
    description: `e-seal of tenant ${pub.tenant} (${pub.keyType}, SCAL${pub.scal}${implicit ? ', implicit authorisation' : ''})`,
    key,
    cert,
    // CSC v1 spelling, kept for clients written against 1.0.4; v2 clients read `auth`.
    authMode: pub.authMode,
    auth: implicit
      ? { mode: 'implicit' }
      : wanted.authInfo
        ? authExplicitPinAndOtp(totpPeriodSec, onlineOtp)
        : { mode: 'explicit' },
    SCAL: String(pub.scal),
    multisign: pub.multisign,
    lang: 'en-US',
  };
}

/**
 * CSC v2 auth objects have no field for a TOTP's period, digits or algorithm (only `generator`), so
 * the description says them for people; clients take them from their own configuration. An online OTP
 * (SandboxOptions.onlineOtp) names another generator: the provider makes it and sends it to the
 * holder when a client calls credentials/sendOTP.
 */
function authExplicitPinAndOtp(totpPeriodSec: number, onlineOtp: boolean) {
  return {
    mode: 'explicit',
    expression: 'PIN AND OTP',
    objects: [
      {
        type: 'Password',
        id: 'PIN',
        format: 'N',
        label: 'PIN',
        description: 'The 6-digit e-seal PIN',
      },
      onlineOtp
        ? {
            type: 'Password',
            id: 'OTP',
            format: 'N',
            generator: 'sms',
            label: 'OTP',
            description: ONLINE_OTP_DESCRIPTION,
          }
        : {
            type: 'Password',
            id: 'OTP',
            format: 'N',
            generator: 'totp',
            label: 'OTP',
            description: `The 6-digit TOTP code (RFC 6238, SHA-1, ${totpPeriodSec} s); each code is accepted once`,
          },
    ],
  };
}
