// An RFC 3161 TSA made of openssl, for the timestamp tests: a root CA, a TSA certificate with the
// critical timeStamping EKU RFC 3161 demands, one with a non-critical EKU (openssl ts refuses to sign
// with it, so its tokens are made with openssl cms), and an unrelated root. `reply()` answers a
// query the way `openssl ts -reply` does; nothing here is our own ASN.1 code.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import os from 'node:os';

const run = promisify(execFile);

export const TSA_POLICY = '1.3.6.1.4.1.99999.1';
export const TSA_OTHER_POLICY = '1.3.6.1.4.1.99999.2';
/** id-ct-TSTInfo */
const TST_INFO = '1.2.840.113549.1.9.16.1.4';

export interface OpensslTsa {
  dir: string;
  rootPemPath: string;
  rootDer: Buffer;
  tsaPemPath: string;
  tsaDer: Buffer;
  /** A root that signed nothing here. */
  otherRootDer: Buffer;
  /** `openssl ts -reply` to a DER TimeStampReq; the DER TimeStampResp. */
  reply(queryDer: Buffer, opts?: { essCertIdV1?: boolean }): Promise<Buffer>;
  /** A token over `tstInfoDer` signed by the TSA certificate whose EKU is not critical. */
  signWithNonCriticalEkuTsa(tstInfoDer: Buffer): Promise<Buffer>;
  openssl(args: string[]): Promise<string>;
  /** Removes the TSA's folder (call it in `after`). */
  cleanup(): Promise<void>;
}

const EXTENSIONS = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[tsa]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[noncritical]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function tsaConfig(dir: string): string {
  const section = (essCertIdAlg: string) => `
dir = ${dir}
serial = ${dir}/tsaserial
crypto_device = builtin
signer_cert = ${dir}/tsa.pem
certs = ${dir}/root.pem
signer_key = ${dir}/tsa.key
signer_digest = sha256
default_policy = ${TSA_POLICY}
other_policies = ${TSA_OTHER_POLICY}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = ${essCertIdAlg}
`;
  // tsa_sha1 names its certificate with the older ESSCertID (SHA-1), as some TSAs still do.
  return `[tsa]\ndefault_tsa = tsa1\n[tsa1]${section('sha256')}[tsa_sha1]${section('sha1')}`;
}

function derOf(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

export async function createOpensslTsa(): Promise<OpensslTsa> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-tsa-'));
  const openssl = async (args: string[]) => (await run('openssl', args, { cwd: dir })).stdout;
  const p = (name: string) => path.join(dir, name);
  await fs.writeFile(p('ext.cnf'), EXTENSIONS);
  await fs.writeFile(p('tsa.cnf'), tsaConfig(dir));
  await fs.writeFile(p('tsaserial'), '01\n');

  const selfSigned = async (name: string, cn: string) =>
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`), '-days', '30',
      '-subj', `/C=JP/O=Sealer Test/CN=${cn}`, '-config', p('ext.cnf'), '-extensions', 'root',
    ]); // prettier-ignore
  await selfSigned('root', 'Sealer Test TSA Root');
  await selfSigned('other-root', 'Someone Else Root');

  const issued = async (name: string, cn: string, section: string, keyArgs: string[]) => {
    await openssl([
      'req', '-new', ...keyArgs, '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`),
      '-subj', `/C=JP/O=Sealer Test/CN=${cn}`, '-config', p('ext.cnf'),
    ]); // prettier-ignore
    await openssl([
      'x509', '-req', '-in', p(`${name}.csr`), '-CA', p('root.pem'), '-CAkey', p('root.key'),
      '-set_serial', `0x${Date.now().toString(16)}${section.length}`, '-days', '30',
      '-out', p(`${name}.pem`), '-extfile', p('ext.cnf'), '-extensions', section,
    ]); // prettier-ignore
  };
  await issued('tsa', 'Sealer Test TSA', 'tsa', ['-newkey', 'rsa:2048']);
  await issued('noncritical', 'Sealer Test TSA (EKU not critical)', 'noncritical', [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
  ]);

  let n = 0;
  // openssl ts keeps its serial number in a file it rewrites: two replies at once would collide.
  let replies: Promise<unknown> = Promise.resolve();
  return {
    dir,
    rootPemPath: p('root.pem'),
    rootDer: derOf(await fs.readFile(p('root.pem'), 'utf8')),
    tsaPemPath: p('tsa.pem'),
    tsaDer: derOf(await fs.readFile(p('tsa.pem'), 'utf8')),
    otherRootDer: derOf(await fs.readFile(p('other-root.pem'), 'utf8')),
    openssl,
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    reply(queryDer, opts) {
      const id = ++n;
      const answer = replies.then(async () => {
        await fs.writeFile(p(`q${id}.der`), queryDer);
        await openssl([
          'ts', '-reply', '-config', p('tsa.cnf'), ...(opts?.essCertIdV1 ? ['-section', 'tsa_sha1'] : []),
          '-queryfile', p(`q${id}.der`), '-out', p(`r${id}.der`),
        ]); // prettier-ignore
        return fs.readFile(p(`r${id}.der`));
      });
      replies = answer.catch(() => undefined);
      return answer;
    },
    async signWithNonCriticalEkuTsa(tstInfoDer) {
      const id = ++n;
      await fs.writeFile(p(`tst${id}.der`), tstInfoDer);
      await openssl([
        'cms', '-sign', '-binary', '-nodetach', '-cades', '-md', 'sha256', '-nosmimecap',
        '-econtent_type', TST_INFO, '-in', p(`tst${id}.der`), '-signer', p('noncritical.pem'),
        '-inkey', p('noncritical.key'), '-outform', 'DER', '-out', p(`bad${id}.der`),
      ]); // prettier-ignore
      return fs.readFile(p(`bad${id}.der`));
    },
  };
}
