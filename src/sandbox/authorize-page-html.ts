// The provider's approval page as plain HTML: what is asked (credential, certificate subject, number of
// signatures and, under SCAL2, the count and a SHA-256 digest of the hash list), a PIN and an OTP field,
// Approve and Deny. No script. Every value is escaped; no secret is ever written into the page.
import { createHash } from 'node:crypto';
import type { CredentialApproval } from './code-store';

export interface PageError {
  /** CSC / OAuth2 error code, also in `data-error` so a test can read it without parsing prose. */
  error: string;
  description: string;
}

/**
 * SHA-256 over the approved hashes' raw bytes, concatenated in request order, as lower-case hex: what
 * the approver compares with the digest the application shows for its run.
 */
export function hashListDigest(hashes: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const d of hashes) h.update(d);
  return h.digest('hex');
}

export function approvalPage(a: {
  approval: CredentialApproval;
  transaction: string;
  subjectDN: string;
  scal: 1 | 2;
  error?: PageError;
}): string {
  const { approval } = a;
  const rows: [string, string, string][] = [
    ['application', 'Application (OAuth client)', approval.clientId],
    ['credential', 'Credential', approval.credentialId],
    ['subject', 'Certificate subject', a.subjectDN],
    ['num-signatures', 'Number of signatures', String(approval.numSignatures)],
  ];
  if (approval.hashes !== undefined) {
    rows.push(['hash-count', 'Hashes to be signed', String(approval.hashes.length)]);
    rows.push(['hash-list-digest', 'SHA-256 of the hash list', hashListDigest(approval.hashes)]);
  }
  const error = a.error
    ? `<p id="error" role="alert" data-error="${esc(a.error.error)}">${esc(a.error.description)}</p>`
    : '';
  return layout(
    'Approve e-seal signatures',
    `<h1>Approve e-seal signatures</h1>
<p>An application asks to seal with your organisation's credential. Check the request, then enter the
credential's PIN and the current one-time password to approve it.</p>
<dl>
${rows.map(([id, label, value]) => `<dt>${esc(label)}</dt><dd id="${id}">${esc(value)}</dd>`).join('\n')}
</dl>
<p>Level: SCAL${a.scal}${a.scal === 2 ? ' (the approval covers exactly the hashes above)' : ''}</p>
${error}
<form method="post" action="/oauth2/authorize" autocomplete="off">
<input type="hidden" name="transaction" value="${esc(a.transaction)}">
<label for="approver">Your name or e-mail (reported to the application for its audit trail)</label>
<input id="approver" name="approver" type="text" maxlength="100">
<label for="pin">PIN</label>
<input id="pin" name="PIN" type="password" inputmode="numeric" required>
<label for="otp">One-time password</label>
<input id="otp" name="OTP" type="text" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required>
<button id="approve" type="submit" name="decision" value="approve">Approve</button>
<button id="deny" type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>`,
  );
}

export function errorPage(description: string): string {
  return layout(
    'Authorisation request refused',
    `<h1>Authorisation request refused</h1>
<p id="error" role="alert" data-error="invalid_request">${esc(description)}</p>
<p>Start again from the application.</p>`,
  );
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}dt{font-weight:bold}
dd{margin:0 0 .5em 0;font-family:monospace;word-break:break-all}#error{color:#a00}
label,input,button{display:block;margin:.3em 0}</style></head>
<body>
${body}
</body></html>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
