// `signatures/signHash`: validates the request against the credential's key, spends the SAD for all
// hashes at once (never a partial batch), and returns one raw signature per hash in request order.
// CSC API v2 (signatures/signHash, SAD): the SAD is "not needed if the signing application has passed
// an access token in the Authorization HTTP header with scope credential, which is also good for the
// credential identified by credentialID"; and "for backward compatibility, signing applications MAY pass
// access tokens with scope credential in this parameter". Such a token is spent like a SAD.
// A signatures fault (r.faults) tampers with the answer after the SAD was spent, as a faulty HSM would.
import { ownedCredential, requireGrant, type RouteRequest, type RouteResult } from './context';
import { cscErrors } from './csc-errors';
import { tamperSignatures } from './fault-effects';
import { signDigestEcdsa, signDigestsEcdsa, signDigestRsa } from './hash-signer';
import { isPresent, optionalString, requireHashArray, requireString } from './http-io';
import { HASH_IMPLIED_BY_SIGN_ALGO, OID, SHA256_LENGTH } from './oids';
import { certValidity } from './provisioning';

export function handleSignHash(r: RouteRequest): RouteResult {
  const { ctx, params } = r;
  const grant = requireGrant(r);
  const cred = ownedCredential(ctx, grant, requireString(params, 'credentialID'));
  const { credentialToken } = r;
  if (credentialToken !== undefined && isPresent(params, 'SAD')) {
    // Two authorisations for one call: refuse rather than guess which one to spend.
    throw cscErrors.invalidParam('SAD', 'not expected with a credential-scope access token');
  }
  const sad = credentialToken === undefined ? requireString(params, 'SAD') : undefined;

  const signAlgo = requireString(params, 'signAlgo');
  if (!cred.signAlgos.includes(signAlgo)) {
    throw cscErrors.invalidParam(
      'signAlgo',
      `${signAlgo} is not in the key's algo list [${cred.signAlgos.join(', ')}]`,
    );
  }
  const hashAlgorithmOID = optionalString(params, 'hashAlgorithmOID');
  if (hashAlgorithmOID === undefined && HASH_IMPLIED_BY_SIGN_ALGO[signAlgo] === undefined) {
    throw cscErrors.missingParam('hashAlgorithmOID', 'string');
  }
  if (hashAlgorithmOID !== undefined && hashAlgorithmOID !== OID.sha256) {
    throw cscErrors.invalidParam('hashAlgorithmOID', `only SHA-256 (${OID.sha256}) is supported`);
  }
  // RSASSA-PKCS1-v1_5 and ECDSA take no parameters; an explicit value (e.g. DER NULL) is tolerated.
  optionalString(params, 'signAlgoParams');
  const operationMode = optionalString(params, 'operationMode');
  if (operationMode !== undefined && operationMode !== 'S') {
    throw cscErrors.invalidParam('operationMode', 'only synchronous mode "S" is supported');
  }

  const hashes = requireHashArray(params, 'hashes', SHA256_LENGTH);
  if (hashes.length > ctx.maxHashesPerCall) {
    throw cscErrors.invalidParam(
      'hashes',
      `${hashes.length} hashes exceed the limit of ${ctx.maxHashesPerCall} per call`,
    );
  }
  if (certValidity(cred) !== 'valid') throw cscErrors.badRequest('Signing certificate is expired');

  const use = { credentialId: cred.public.credentialId, clientId: grant.clientId, hashes };
  if (credentialToken !== undefined) ctx.credentialTokens.spend(credentialToken, use);
  else if (sad !== undefined && ctx.credentialTokens.knows(sad))
    ctx.credentialTokens.spend(sad, use, { asSad: true });
  else ctx.sads.spend(sad ?? '', use);

  const sign = (digest: Buffer) =>
    cred.ecPrivateScalar !== undefined
      ? signDigestEcdsa(cred.ecPrivateScalar, digest, ctx.ecdsaSignatureFormat)
      : signDigestRsa(cred.privateKey, digest);
  // ECDSA signs the whole call at once: its hashes share one modular inversion (see hash-signer.ts).
  const signatures =
    cred.ecPrivateScalar !== undefined
      ? signDigestsEcdsa(cred.ecPrivateScalar, hashes, ctx.ecdsaSignatureFormat)
      : hashes.map(sign);
  ctx.stats.signatures += signatures.length;
  const fault = r.faults?.signatures;
  const answered = fault ? tamperSignatures(signatures, hashes, fault.mode, fault.draw, sign) : signatures;
  return { body: { signatures: answered.map((s) => s.toString('base64')) } };
}
