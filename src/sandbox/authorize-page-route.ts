// `GET /oauth2/authorize` with scope "credential" (CSC API v2 section 8.4.2, RFC 6749 section 4.1):
// the provider's own page where a tenant's approver reads what an application asks to seal and approves
// it with the credential's PIN and OTP. `POST` of that page checks the factors with the rules of
// credentials/authorize and redirects (302) to the client's loopback redirect_uri with a single-use
// `code` and the client's `state`; the client trades the code at oauth2/token for a credential-scope
// access token that stands in for the SAD.
import { CscProtocolError } from './csc-errors';
import {
  readClientAndRedirect,
  readCredentialApproval,
  UnredirectableRequestError,
} from './authorization-request';
import { approvalPage, errorPage, type PageError } from './authorize-page-html';
import type { CredentialApproval } from './code-store';
import type { RouteRequest, RouteResult, SandboxContext } from './context';
import { checkKeyFactors } from './factor-check';

export function handleAuthorizePage(r: RouteRequest): RouteResult {
  return r.req.method === 'POST' ? approve(r) : show(r);
}

function show({ ctx, req }: RouteRequest): RouteResult {
  const query = new URL(req.url ?? '/', 'http://sandbox').searchParams;
  let client: ReturnType<typeof readClientAndRedirect>;
  try {
    client = readClientAndRedirect(ctx, query);
  } catch (err) {
    if (err instanceof UnredirectableRequestError) return { status: 400, html: errorPage(err.description) };
    throw err;
  }
  let approval: CredentialApproval;
  try {
    approval = readCredentialApproval(ctx, client.tenant, client.redirectUri, query);
  } catch (err) {
    if (!(err instanceof CscProtocolError)) throw err;
    const states = query.getAll('state');
    return redirect(client.redirectUri, {
      error: err.error,
      error_description: err.description,
      state: states.length === 1 ? states[0] : undefined,
    });
  }
  return page(ctx, approval, ctx.approvals.add(approval));
}

function approve({ ctx, params }: RouteRequest): RouteResult {
  const transaction = typeof params.transaction === 'string' ? params.transaction : '';
  const approval = ctx.approvals.get(transaction);
  if (approval === undefined) {
    return { status: 400, html: errorPage('This approval request is unknown or has expired') };
  }
  if (params.decision === 'deny') {
    ctx.approvals.delete(transaction);
    ctx.logger.info(
      { credentialID: approval.credentialId, clientId: approval.clientId },
      'sandbox: approver denied the request',
    );
    return redirect(approval.redirectUri, {
      error: 'access_denied',
      error_description: 'The approver denied the request',
      state: approval.state,
    });
  }
  const pin = typeof params.PIN === 'string' ? params.PIN : '';
  const otp = typeof params.OTP === 'string' ? params.OTP.trim() : '';
  if (pin === '' || otp === '') {
    return page(ctx, approval, transaction, {
      error: 'invalid_request',
      description: 'Enter the PIN and the one-time password',
    });
  }
  const cred = ctx.state.credentials.get(approval.credentialId);
  if (cred === undefined)
    throw new Error(`pending approval names unknown credential ${approval.credentialId}`);
  try {
    checkKeyFactors(ctx, cred, { pin, otp, clientId: approval.clientId });
  } catch (err) {
    if (!(err instanceof CscProtocolError)) throw err;
    // The page again with the reason; the request stays pending until it expires or succeeds.
    return page(ctx, approval, transaction, { error: err.error, description: err.description });
  }
  ctx.approvals.delete(transaction);
  const approver = typeof params.approver === 'string' ? params.approver.trim().slice(0, 100) : '';
  ctx.logger.info(
    {
      credentialID: approval.credentialId,
      clientId: approval.clientId,
      numSignatures: approval.numSignatures,
    },
    'sandbox: approver approved on the page',
  );
  return redirect(approval.redirectUri, {
    code: ctx.codes.issue(approver ? { ...approval, approver } : approval),
    state: approval.state,
  });
}

function page(
  ctx: SandboxContext,
  approval: CredentialApproval,
  transaction: string,
  error?: PageError,
): RouteResult {
  const cred = ctx.state.credentials.get(approval.credentialId);
  return {
    status: error === undefined ? 200 : 400,
    html: approvalPage({
      approval,
      transaction,
      subjectDN: cred?.subjectDN ?? '',
      scal: cred?.public.scal ?? 1,
      error,
    }),
  };
}

/** 302 to the redirect_uri with `params` added to its query (RFC 6749 section 4.1.2 keeps its own). */
function redirect(redirectUri: string, params: Record<string, string | undefined>): RouteResult {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return { status: 302, location: url.toString() };
}
