// A throwaway time-stamping authority made by openssl alone: a root CA, a TSA leaf (EKU timeStamping,
// critical, as RFC 3161 2.3 requires), `openssl ts -reply` for tokens, and real OCSP responses and a
// CRL from the same CA, so LTV tests use validation data that nobody here encoded.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslTsa {
  dir: string;
  rootPemPath: string;
  rootDer: Buffer;
  tsaCertDer: Buffer;
  /** A TimeStampToken (DER ContentInfo) over a SHA-256 imprint, with the TSA's chain in it. */
  token(imprint: Buffer): Buffer;
  /**
   * `openssl ts -verify` of a token over `data` (openssl hashes it and compares the imprint, checks the
   * TSA's signature and chain up to the root); returns openssl's output, throws when it fails.
   */
  verifyToken(token: Buffer, data: Buffer): string;
  /** A signed OCSP response from the root about the TSA certificate (status good). */
  ocspForTsa(): Buffer;
  /** A fresh CRL of the root (DER). */
  crl(): Buffer;
  cleanup(): Promise<void>;
}

const CONFIG = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ tsa_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
[ tsa ]
default_tsa = test_tsa
[ test_tsa ]
serial = tsaserial
signer_digest = sha256
default_policy = 1.2.392.99999.1
digests = sha256
ess_cert_id_alg = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
`;

export async function createOpensslTsa(): Promise<OpensslTsa> {
  // Not tempDir(): its after() hook, registered from a before() hook, would remove the folder too early.
  const dir = await mkdtemp(join(tmpdir(), 'sealer-tsa-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(at('openssl.cnf'), CONFIG);
  writeFileSync(at('crlnumber'), '01\n');
  writeFileSync(at('tsaserial'), '01\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    'req',
    '-x509',
    '-new',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '30',
    '-subj',
    '/C=JP/O=Sealer Test TSA Service/CN=Sealer Test TSA Root',
    '-config',
    'openssl.cnf',
    '-extensions',
    'ca_ext',
  );
  openssl(
    'req',
    '-new',
    ...ec,
    '-keyout',
    'tsa.key',
    '-out',
    'tsa.csr',
    '-subj',
    '/C=JP/O=Sealer Test TSA Service/CN=Sealer Test TSA',
    '-config',
    'openssl.cnf',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'tsa.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-set_serial',
    '0x1001',
    '-out',
    'tsa.pem',
    '-days',
    '30',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    'tsa_ext',
  );
  // The CA database lists the TSA certificate as valid, so OCSP answers "good" rather than "unknown".
  const enddate = openssl('x509', '-in', 'tsa.pem', '-noout', '-enddate')
    .toString()
    .trim()
    .slice('notAfter='.length);
  const expiry = new Date(enddate).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  writeFileSync(
    at('index.txt'),
    `V\t${expiry}\t\t1001\tunknown\t/C=JP/O=Sealer Test TSA Service/CN=Sealer Test TSA\n`,
  );
  const der = (pem: string) => openssl('x509', '-in', pem, '-outform', 'DER');

  let n = 0;
  return {
    dir,
    rootPemPath: at('ca.pem'),
    rootDer: der('ca.pem'),
    tsaCertDer: der('tsa.pem'),
    token(imprint) {
      const id = ++n;
      openssl(
        'ts',
        '-query',
        '-digest',
        imprint.toString('hex'),
        '-sha256',
        '-cert',
        '-no_nonce',
        '-out',
        `q${id}.tsq`,
      );
      openssl(
        'ts',
        '-reply',
        '-config',
        'openssl.cnf',
        '-queryfile',
        `q${id}.tsq`,
        '-signer',
        'tsa.pem',
        '-inkey',
        'tsa.key',
        '-chain',
        'ca.pem',
        '-token_out',
        '-out',
        `t${id}.der`,
      );
      return readFileSync(at(`t${id}.der`));
    },
    verifyToken(token, data) {
      const id = ++n;
      writeFileSync(at(`v${id}.der`), token);
      writeFileSync(at(`v${id}.bin`), data);
      return openssl(
        'ts',
        '-verify',
        '-data',
        `v${id}.bin`,
        '-in',
        `v${id}.der`,
        '-token_in',
        '-CAfile',
        'ca.pem',
      ).toString();
    },
    ocspForTsa() {
      const id = ++n;
      openssl('ocsp', '-issuer', 'ca.pem', '-cert', 'tsa.pem', '-no_nonce', '-reqout', `o${id}.req`);
      openssl(
        'ocsp',
        '-index',
        'index.txt',
        '-rsigner',
        'ca.pem',
        '-rkey',
        'ca.key',
        '-CA',
        'ca.pem',
        '-reqin',
        `o${id}.req`,
        '-respout',
        `o${id}.der`,
        '-ndays',
        '1',
      );
      return readFileSync(at(`o${id}.der`));
    },
    crl() {
      const id = ++n;
      openssl(
        'ca',
        '-gencrl',
        '-config',
        'openssl.cnf',
        '-keyfile',
        'ca.key',
        '-cert',
        'ca.pem',
        '-out',
        `c${id}.pem`,
      );
      return openssl('crl', '-in', `c${id}.pem`, '-outform', 'DER');
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
