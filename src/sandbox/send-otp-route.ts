// `credentials/sendOTP` (CSC v1.0.4.0 section 11.8 and v2): "start the online OTP generation mechanism"
// of a credential whose OTP is online (credentials/info: v1 `OTP/type: "online"`, v2 an OTP object whose
// `generator` is not `totp`). Request: `credentialID`, optional `clientData`; no output values. Only
// the credentials named in SandboxOptions.onlineOtp have one: the store (context.ts) makes a fresh
// 6-digit code, valid 5 minutes and once, and "texts" it by writing `<dataDir>/outbox-otp/<credentialID>.txt`
// (mode 0600), the approver's phone. Any other credential is refused: its OTP is a TOTP the holder's
// device computes. The code is never logged or answered.
import {
  ownedCredential,
  requireGrant,
  type RouteHandler,
  type RouteRequest,
  type RouteResult,
} from './context';
import { cscErrors } from './csc-errors';
import { optionalString, requireString } from './http-io';

function sendOtp(r: RouteRequest): void {
  const grant = requireGrant(r);
  const cred = ownedCredential(r.ctx, grant, requireString(r.params, 'credentialID'));
  optionalString(r.params, 'clientData');
  const credentialId = cred.public.credentialId;
  if (!r.ctx.onlineOtp.isOnline(credentialId)) {
    throw cscErrors.invalidParam(
      'credentialID',
      cred.public.authMode === 'implicit'
        ? `credential ${credentialId} uses implicit authorisation and has no OTP`
        : `credential ${credentialId} has an offline OTP (TOTP): there is nothing to send`,
    );
  }
  // A locked credential cannot be authorised: texting its holder a code would only mislead them.
  r.ctx.lock.assertUnlocked(credentialId);
  r.ctx.onlineOtp.send(credentialId);
  r.ctx.logger.info(
    { credentialID: credentialId, clientId: grant.clientId },
    'sandbox: online OTP sent to the holder',
  );
}

/** v2: the answer is 204 No Content (the JSON writer always writes a body, hence an empty page). */
export const handleSendOtp: RouteHandler = (r): RouteResult => {
  sendOtp(r);
  return { status: 204, html: '' };
};

/** v1.0.4.0: 200 with no output values (an empty JSON object). */
export const handleSendOtpV1: RouteHandler = (r): RouteResult => {
  sendOtp(r);
  return { body: {} };
};
