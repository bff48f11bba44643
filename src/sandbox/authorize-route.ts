// `credentials/authorize`: checks the request, then PIN and TOTP (RFC 6238, 6 digits, SHA-1, the
// sandbox's period, one step either side, never the same time step twice; or, for a credential with an
// online OTP, the code credentials/sendOTP sent, once: factor-check.ts), counts failures towards a
// lockout, and issues a SAD for `numSignatures` signatures; under SCAL2 (or whenever hashes are sent)
// the SAD is bound to those hashes. An implicit credential (auth mode "implicit") is authorised by the
// service token alone: CSC defines `authData` for explicit credentials only, so the sandbox refuses any
// sent to an implicit one (a client that sends factors where none are asked has them in the wrong place).
import { ownedCredential, requireGrant, type RouteRequest, type RouteResult } from './context';
import { cscErrors } from './csc-errors';
import { sameSecret } from './constant-time';
import { checkOtp, otpRefusal } from './factor-check';
import { isPresent, requireHashArray, requireInteger, requireString, type Params } from './http-io';
import { OID, SHA256_LENGTH } from './oids';

export function handleAuthorize(r: RouteRequest): RouteResult {
  const { ctx, params } = r;
  const grant = requireGrant(r);
  const cred = ownedCredential(ctx, grant, requireString(params, 'credentialID'));
  const credentialId = cred.public.credentialId;

  const numSignatures = requireInteger(params, 'numSignatures');
  if (numSignatures < 1) throw cscErrors.badRequest('Invalid value for parameter numSignatures');
  if (numSignatures > cred.public.multisign) throw cscErrors.tooManySignatures(cred.public.multisign);

  let hashes: Buffer[] | undefined;
  if (cred.public.scal === 2 || isPresent(params, 'hashes')) {
    hashes = requireHashArray(params, 'hashes', SHA256_LENGTH);
    const hashAlgorithmOID = requireString(params, 'hashAlgorithmOID');
    if (hashAlgorithmOID !== OID.sha256) {
      throw cscErrors.invalidParam('hashAlgorithmOID', `only SHA-256 (${OID.sha256}) is supported`);
    }
    if (hashes.length !== numSignatures) {
      throw cscErrors.invalidParam(
        'hashes',
        `${hashes.length} hashes given for numSignatures ${numSignatures}`,
      );
    }
  }
  if (cred.public.authMode === 'implicit') {
    if (isPresent(params, 'authData')) {
      throw cscErrors.invalidParam(
        'authData',
        `credential ${credentialId} uses implicit authorisation and takes no authentication data`,
      );
    }
    return issueSad(r, credentialId, numSignatures, hashes);
  }
  const factors = readAuthData(params);

  ctx.lock.assertUnlocked(credentialId);
  const pinOk = sameSecret(factors.PIN, cred.pin);
  const otp = checkOtp(ctx, cred, factors.OTP);
  if (!pinOk || !otp.ok) {
    // A replayed code is a failed authentication too (RFC 6238 section 5.2), so it counts to the lock.
    const lockedNow = ctx.lock.recordFailure(credentialId);
    const failed = !pinOk ? 'PIN' : !otp.ok && otp.replayed ? 'OTP replayed' : 'OTP';
    ctx.logger.info(
      { credentialID: credentialId, clientId: grant.clientId, failed, lockedNow },
      'sandbox: credential authorisation failed',
    );
    if (!pinOk) throw cscErrors.invalidPin();
    throw otpRefusal(otp);
  }
  ctx.lock.recordSuccess(credentialId);
  otp.spend();
  return issueSad(r, credentialId, numSignatures, hashes);
}

function issueSad(
  r: RouteRequest,
  credentialId: string,
  numSignatures: number,
  hashes: Buffer[] | undefined,
): RouteResult {
  // A sad-expiry fault (r.faults) ends the SAD earlier than the expiresIn it is answered with.
  const { sad, expiresInSec } = r.ctx.sads.issue(
    { credentialId, clientId: requireGrant(r).clientId, numSignatures, hashes },
    r.faults?.sadExpiry,
  );
  return { body: { SAD: sad, expiresIn: expiresInSec } };
}

/** `authData` must carry exactly the objects of the expression "PIN AND OTP", each with a string value. */
function readAuthData(params: Params): { PIN: string; OTP: string } {
  const authData = params.authData;
  if (!Array.isArray(authData)) throw cscErrors.missingParam('authData', 'array');
  const values = new Map<string, string>();
  authData.forEach((obj: unknown, i) => {
    const o = obj as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object' || typeof o.id !== 'string' || typeof o.value !== 'string') {
      throw cscErrors.invalidParam('authData', `authData[${i}] must be an object with string id and value`);
    }
    if (o.id !== 'PIN' && o.id !== 'OTP') {
      throw cscErrors.invalidParam('authData', `unknown authentication object id ${JSON.stringify(o.id)}`);
    }
    if (values.has(o.id))
      throw cscErrors.invalidParam('authData', `authentication object ${o.id} is repeated`);
    values.set(o.id, o.value);
  });
  const PIN = values.get('PIN');
  const OTP = values.get('OTP');
  if (PIN === undefined || OTP === undefined) {
    throw cscErrors.invalidParam(
      'authData',
      `the expression "PIN AND OTP" needs objects with id PIN and id OTP`,
    );
  }
  return { PIN, OTP };
}
