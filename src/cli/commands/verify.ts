// `sealer verify <pdf...> [--root PEM]... [--json]`: prints verifySealedPdf's verdict per signature and
// document timestamp, one line each (or a JSON array per file), and exits 1 when any fails or a file
// cannot be read. Without --root the chains are reported as not checked, which is not a failure.
import fs from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { verifySealedPdf, type SignatureCheck, type TimestampReport } from '../../pades';
// Types only: context.ts loads Redis and the queue, which checking a file needs neither of.
import type { CliIo } from '../context';

const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in each PEM file (a bundle may hold several roots). */
async function readRoots(files: string[]): Promise<Buffer[]> {
  const roots: Buffer[] = [];
  for (const file of files) {
    const pems = (await fs.readFile(file, 'latin1')).match(PEM_CERT) ?? [];
    if (pems.length === 0) throw new Error(`--root ${file}: no PEM certificate in it`);
    for (const pem of pems) roots.push(new X509Certificate(pem).raw);
  }
  return roots;
}

function timestampText(label: string, ts: TimestampReport | undefined): string {
  if (!ts) return '';
  const when = ts.genTime ? ts.genTime.toISOString() : 'no time';
  return `, ${label} ${when}${ts.tsaSubject ? ` by ${ts.tsaSubject}` : ''}${ts.valid ? '' : ' (INVALID)'}`;
}

function line(file: string, c: SignatureCheck, rootsGiven: boolean): string {
  const what = c.kind === 'document-timestamp' ? 'document timestamp' : 'signature';
  const scope = c.coversWholeDocument ? 'whole document' : 'NOT the whole document';
  const trust = !rootsGiven ? 'chain not checked' : c.chainTrusted ? 'chain trusted' : 'chain NOT trusted';
  const parts = [c.subFilter, scope, trust];
  if (c.level) parts.push(`level ${c.level}`);
  if (c.signerSubject) parts.push(`${c.kind === 'signature' ? 'signer' : 'TSA'} ${c.signerSubject}`);
  if (c.certificateSerialHex) parts.push(`serial ${c.certificateSerialHex}`);
  const revocation = c.revocation.length
    ? `revocation data ${c.revocation.every((r) => r.ocsp || r.crl) ? 'present' : 'partial'}`
    : 'no revocation data';
  parts.push(revocation);
  if (c.docMdpPermission) parts.push(`DocMDP P=${c.docMdpPermission}`);
  parts.push(
    c.laterChanges === 'none'
      ? 'no later changes'
      : c.laterChanges === 'validation-data'
        ? 'later changes: validation data and signatures only'
        : 'later changes: OTHER',
  );
  const times =
    (c.kind === 'signature' ? timestampText('signature timestamp', c.signatureTimestamp) : '') +
    (c.kind === 'signature' ? timestampText('document timestamp', c.documentTimestamp) : '') +
    (c.kind === 'document-timestamp' ? timestampText('time', c.documentTimestamp) : '');
  return (
    `${file}: ${what} ${c.index + 1}: ${c.valid ? 'VALID' : 'INVALID'} (${parts.join(', ')}${times})` +
    (c.problems.length ? `: ${c.problems.join('; ')}` : '')
  );
}

export async function verifyCommand(
  files: string[],
  opts: { root?: string[]; json?: boolean },
  io: CliIo = processIo,
): Promise<void> {
  const print = (text: string) => void io.stdout.write(text + '\n');
  const rootFiles = opts.root ?? [];
  const trustedRootsDer = rootFiles.length ? await readRoots(rootFiles) : undefined;
  let bad = 0;
  const chainChecked = trustedRootsDer !== undefined;
  const json: { file: string; chainChecked: boolean; error?: string; signatures: SignatureCheck[] }[] = [];
  for (const file of files) {
    let checks: SignatureCheck[];
    try {
      checks = await verifySealedPdf(await fs.readFile(file), { trustedRootsDer });
    } catch (err) {
      bad++;
      json.push({ file, chainChecked, error: (err as Error).message, signatures: [] });
      if (!opts.json) print(`${file}: INVALID: ${(err as Error).message}`);
      continue;
    }
    if (checks.length === 0) {
      bad++;
      json.push({ file, chainChecked, error: 'no signature found', signatures: [] });
      if (!opts.json) print(`${file}: INVALID: no signature found`);
      continue;
    }
    bad += checks.filter((c) => !c.valid).length;
    json.push({ file, chainChecked, signatures: checks });
    if (!opts.json) for (const c of checks) print(line(file, c, chainChecked));
  }
  if (opts.json) print(JSON.stringify(json, null, 2));
  else print(`${files.length} file(s) checked, ${bad === 0 ? 'all valid' : `${bad} problem(s)`}`);
  if (bad) process.exitCode = 1;
}
