// The demo plays the approver of a tenant that keeps its own factors: it opens the sandbox provider's
// approval page, types the PIN and a current one-time code as a person would, and follows the redirect
// back to `sealer approve`'s loopback listener. Only for the built-in sandbox, whose page it knows.
import { fetch } from 'undici';
import { totpCode } from '../csc';

export async function playApprover(
  url: string,
  factors: { pin: string; totpSecret: string; totpPeriodSec?: number },
  approver?: string,
): Promise<void> {
  const page = await fetch(url);
  const html = await page.text();
  if (!page.ok) throw new Error(`approval page answered HTTP ${page.status}`);
  const transaction = /name="transaction" value="([^"]+)"/.exec(html)?.[1];
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!transaction || !action) throw new Error('the approval page has no approval form');
  const form = new URLSearchParams({
    transaction: transaction.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c))),
    PIN: factors.pin,
    OTP: totpCode(factors.totpSecret, { period: factors.totpPeriodSec }),
    decision: 'approve',
    ...(approver ? { approver } : {}),
  });
  const answer = await fetch(new URL(action, url), {
    method: 'POST',
    body: form,
    redirect: 'manual',
  });
  const back = answer.headers.get('location');
  if (answer.status !== 302 || !back) {
    throw new Error(`the approval page did not send the browser back (HTTP ${answer.status})`);
  }
  // The browser follows the redirect to the approving command's loopback listener.
  const done = await fetch(back);
  await done.text();
}
