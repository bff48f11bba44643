import fs from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { verifySealedPdf } from '../../pades';

export async function verifyCommand(files: string[], opts: { root?: string }): Promise<void> {
  const trustedRootsDer = opts.root ? [new X509Certificate(await fs.readFile(opts.root)).raw] : undefined;
  let bad = 0;
  for (const file of files) {
    let checks;
    try {
      checks = await verifySealedPdf(await fs.readFile(file), { trustedRootsDer });
    } catch (err) {
      bad++;
      console.log(`${file}: INVALID: ${(err as Error).message}`);
      continue;
    }
    if (checks.length === 0) {
      bad++;
      console.log(`${file}: INVALID: no signature found`);
      continue;
    }
    for (const c of checks) {
      // Earlier signatures never cover later updates; the last one must cover every byte of the file.
      const last = c === checks[checks.length - 1];
      const ok = c.valid && (!trustedRootsDer || c.chainTrusted === true) && (!last || c.coversWholeDocument);
      if (!ok) bad++;
      const scope = c.coversWholeDocument ? 'whole document' : 'NOT the whole document';
      const trust = trustedRootsDer ? (c.chainTrusted ? ', chain trusted' : ', chain NOT trusted') : '';
      console.log(
        `${file}: signature ${c.index + 1}: ${ok ? 'VALID' : 'INVALID'} (${c.subFilter}, ${scope}${trust}` +
          `${c.signerSubject ? `, signer ${c.signerSubject}` : ''}${c.certificateSerialHex ? `, serial ${c.certificateSerialHex}` : ''})` +
          (c.problems.length ? `: ${c.problems.join('; ')}` : ''),
      );
    }
  }
  console.log(`${files.length} file(s) checked, ${bad === 0 ? 'all valid' : `${bad} problem(s)`}`);
  if (bad) process.exitCode = 1;
}
