// Outside checks of timestamps in sealed files: the signature timestamp read out of a CMS with pkijs,
// and `openssl ts -verify` run over it (or over a document timestamp) against a root.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { readTimestampToken } from '../../src/pades';
import { tempDir } from './temp-dir';

const run = promisify(execFile);
const SIGNATURE_TIMESTAMP_TOKEN = '1.2.840.113549.1.9.16.2.14';

/** The signature-time-stamp-token of a CMS's first SignerInfo and the digest it must stamp. */
export function signatureTimestampOf(cmsDer: Buffer): { token: Buffer; imprint: Buffer } | undefined {
  const info = pkijs.ContentInfo.fromBER(new Uint8Array(cmsDer));
  const signed = new pkijs.SignedData({ schema: info.content });
  const signer = signed.signerInfos[0]!;
  const attr = signer.unsignedAttrs?.attributes.find((a) => a.type === SIGNATURE_TIMESTAMP_TOKEN);
  if (!attr) return undefined;
  const token = Buffer.from((attr.values[0] as asn1js.Sequence).toBER(false));
  const value = Buffer.from(signer.signature.valueBlock.valueHexView);
  return { token, imprint: crypto.createHash('sha256').update(value).digest() };
}

/** `openssl ts -verify` of a TimeStampToken over a SHA-256 digest; returns openssl's output (throws on
 * failure). `untrusted` holds the TSA certificate when the token does not carry it. */
export async function opensslTsVerify(
  token: Buffer,
  digest: Buffer,
  rootPemPath: string,
  untrustedPemPath?: string,
): Promise<string> {
  const dir = await tempDir('sealer-ts-');
  const file = path.join(dir, 'token.der');
  await fs.writeFile(file, token);
  const args = [
    'ts',
    '-verify',
    '-token_in',
    '-in',
    file,
    '-digest',
    digest.toString('hex'),
    '-CAfile',
    rootPemPath,
  ];
  if (untrustedPemPath) args.push('-untrusted', untrustedPemPath);
  const { stdout, stderr } = await run('openssl', args);
  await fs.rm(dir, { recursive: true, force: true });
  return stdout + stderr;
}

/** genTime of a TimeStampToken (the product's reader; openssl checked the token itself). */
export function genTimeOf(token: Buffer): Date {
  return readTimestampToken(token).genTime;
}

/** The catalog's /DSS as qpdf reads it: number of Certs, OCSPs, CRLs and the VRI keys. */
export async function dssByQpdf(
  file: string,
): Promise<{ certs: number; ocsps: number; crls: number; vri: string[] } | undefined> {
  const { stdout } = await run('qpdf', ['--json=2', '--json-key=qpdf', file], {
    maxBuffer: 256 * 1024 * 1024,
  });
  const json = JSON.parse(stdout) as { qpdf: [unknown, Record<string, { value?: Record<string, unknown> }>] };
  const objects = json.qpdf[1];
  const trailer = objects.trailer?.value as { '/Root'?: string } | undefined;
  const rootRef = trailer?.['/Root'];
  if (!rootRef) return undefined;
  const deref = (v: unknown): Record<string, unknown> | unknown[] | undefined => {
    if (typeof v === 'string' && / R$/.test(v)) {
      return objects[`obj:${v}`]?.value as Record<string, unknown> | undefined;
    }
    return v as Record<string, unknown> | unknown[] | undefined;
  };
  const catalog = deref(rootRef) as Record<string, unknown> | undefined;
  const dss = deref(catalog?.['/DSS']) as Record<string, unknown> | undefined;
  if (!dss) return undefined;
  const count = (k: string) => ((deref(dss[k]) as unknown[] | undefined) ?? []).length;
  const vri = deref(dss['/VRI']) as Record<string, unknown> | undefined;
  return {
    certs: count('/Certs'),
    ocsps: count('/OCSPs'),
    crls: count('/CRLs'),
    vri: Object.keys(vri ?? {}),
  };
}
