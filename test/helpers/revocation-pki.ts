// A small PKI made by `openssl ca` for revocation tests, with the servers that answer for it: two
// `openssl ocsp` responders (one signing as the CA, one as a delegated responder with
// id-kp-OCSPSigning and ocsp-nocheck) behind a node:http front that also serves the CRL, counts
// requests per path, and can tamper with or replay answers. Nothing here is product code.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { readChildren, readTlv } from '../../src/pades/der';

export interface IssuedCert {
  name: string;
  pemPath: string;
  der: Buffer;
}

export interface RevocationPki {
  dir: string;
  root: IssuedCert;
  /** Delegated OCSP responder (RSA-2048, id-kp-OCSPSigning, ocsp-nocheck) issued by the root. */
  responder: IssuedCert;
  /** Leaves by name; see createRevocationPki for what each one is. */
  leaves: Record<LeafName, IssuedCert>;
  /** Base URL of the node front, e.g. http://127.0.0.1:1234 */
  base: string;
  /** Requests the front received, by path. */
  hits: Map<string, number>;
  /** When false, /ocsp/ca answers 503 (a responder that is down for a while). */
  setCaResponderUp(up: boolean): void;
  /** Runs openssl in the PKI's folder: stdout then stderr; throws with both on failure. */
  openssl(args: string[]): string;
  /** Stops the servers and removes the folder (register it with `after` at the top of the test file). */
  close(): Promise<void>;
}

export type LeafName =
  | 'ocspGood'
  | 'ocspRevoked'
  | 'ocspUnknown'
  | 'ocspCounted'
  | 'ocspTampered'
  | 'ocspReplayed'
  | 'delegatedGood'
  | 'crlGood'
  | 'crlRevoked'
  | 'crlPem'
  | 'fallback'
  | 'garbage'
  | 'none';

/** stdout then stderr (openssl prints verdicts such as "Response verify OK" on stderr); throws on a non-zero exit. */
function openssl(args: string[], cwd: string): string {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited with ${r.status}:\n${output}`);
  return output;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Resolves when openssl says it listens. Not by probing the port: `openssl ocsp` (3.0) hangs for good
 * on a connection that closes without sending a request.
 */
function waitForListening(port: number, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('waiting for OCSP client connections')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`openssl ocsp on port ${port} exited with ${code}: ${seen}`)),
    );
  });
}

function post(port: number, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The OCSPResponse with one bit of the BasicOCSPResponse's signature flipped (all else intact). */
export function flipSignatureBit(response: Buffer): Buffer {
  const out = Buffer.from(response);
  const bytes = readChildren(out, readChildren(out, readChildren(out, readTlv(out, 0))[1]!)[0]!)[1]!;
  const basic = readTlv(out, bytes.contentStart, bytes.end);
  const signature = readChildren(out, basic)[2]!;
  out[signature.end - 1]! ^= 0x01;
  return out;
}

const CONFIG = `
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
crlnumber = ./crlnumber
certificate = ./root.pem
private_key = ./root.key
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
countryName = optional
organizationName = optional
commonName = supplied
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

function leafExtensions(opts: { ocsp?: string; crl?: string }): string {
  const lines = [
    '[ leaf ]',
    'basicConstraints = CA:FALSE',
    'keyUsage = critical, digitalSignature, nonRepudiation',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  if (opts.ocsp) lines.push(`authorityInfoAccess = OCSP;URI:${opts.ocsp}`);
  if (opts.crl) lines.push(`crlDistributionPoints = URI:${opts.crl}`);
  return lines.join('\n') + '\n';
}

/**
 * Leaves: ocspGood, ocspRevoked (keyCompromise), ocspUnknown (signed by the root but not in its
 * database), ocspCounted (OCSP via a path only the cache test uses), ocspTampered (a byte of every
 * answer flipped), ocspReplayed (the first answer returned again), delegatedGood (answered by the
 * delegated responder), crlGood, crlRevoked (cessationOfOperation), crlPem (the CRL served as PEM),
 * fallback (OCSP at a dead port, CRL DP too), garbage (OCSP answers 200 with HTML, CRL DP too),
 * none (neither).
 */
export async function createRevocationPki(): Promise<RevocationPki> {
  // Not tempDir(): its after() hook, registered from inside a before() hook, would run right after it.
  const dir = mkdtempSync(join(tmpdir(), 'sealer-revocation-pki-'));
  const children: ChildProcess[] = [];
  const run = (args: string[]) => openssl(args, dir);
  writeFileSync(join(dir, 'openssl.cnf'), CONFIG);
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  mkdirSync(join(dir, 'newcerts'));

  const hits = new Map<string, number>();
  let crlDer = Buffer.alloc(0);
  let crlPem = '';
  let caPort = 0;
  let delegatedPort = 0;
  let caUp = true;
  let replay: Buffer | undefined;
  const front = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: Buffer, type = 'application/ocsp-response') => {
        res.writeHead(status, { 'content-type': type, 'content-length': body.length });
        res.end(body);
      };
      const proxy = async (port: number) => post(port, Buffer.concat(chunks));
      const route = async () => {
        if (path === '/root.crl') return answer(200, crlDer, 'application/pkix-crl');
        if (path === '/root-pem.crl') return answer(200, Buffer.from(crlPem), 'application/x-pem-file');
        if (path === '/ocsp/ca' || path === '/ocsp/counted') {
          if (!caUp) return answer(503, Buffer.from('down'), 'text/plain');
          const r = await proxy(caPort);
          return answer(r.status, r.body);
        }
        if (path === '/ocsp/delegated') {
          const r = await proxy(delegatedPort);
          return answer(r.status, r.body);
        }
        if (path === '/ocsp/tampered') {
          const r = await proxy(caPort);
          return answer(r.status, flipSignatureBit(r.body));
        }
        if (path === '/ocsp/garbage') return answer(200, Buffer.from('<html>maintenance</html>'));
        if (path === '/ocsp/replayed') {
          replay ??= (await proxy(caPort)).body;
          return answer(200, replay);
        }
        return answer(404, Buffer.from('no such path'), 'text/plain');
      };
      route().catch((err: Error) => answer(502, Buffer.from(err.message), 'text/plain'));
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(front.address() as net.AddressInfo).port}`;
  const deadPort = await freePort();

  const issued = (name: string): IssuedCert => {
    const pemPath = join(dir, `${name}.pem`);
    const der = execFileSync('openssl', ['x509', '-in', pemPath, '-outform', 'DER']);
    return { name, pemPath, der };
  };

  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'root.key']);
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    'root.key',
    '-config',
    'openssl.cnf',
    '-extensions',
    'v3_root',
    '-subj',
    '/C=JP/O=Sealer Revocation Test/CN=Sealer Revocation Test Root',
    '-days',
    '3650',
    '-out',
    'root.pem',
  ]);

  const issue = (name: string, ext: string, opts: { rsa?: boolean; outsideDatabase?: boolean } = {}) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    run(
      opts.rsa
        ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`]
        : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`],
    );
    run([
      'req',
      '-new',
      '-key',
      `${name}.key`,
      '-config',
      'openssl.cnf',
      '-subj',
      `/C=JP/O=Example KK/CN=${name}`,
      '-out',
      `${name}.csr`,
    ]);
    if (opts.outsideDatabase) {
      run([
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'root.pem',
        '-CAkey',
        'root.key',
        '-set_serial',
        '0x7e57',
        '-days',
        '30',
        '-sha256',
        '-extfile',
        `${name}.ext`,
        '-extensions',
        'leaf',
        '-out',
        `${name}.pem`,
      ]);
    } else {
      run([
        'ca',
        '-batch',
        '-config',
        'openssl.cnf',
        '-notext',
        '-in',
        `${name}.csr`,
        '-out',
        `${name}.pem`,
        '-extfile',
        `${name}.ext`,
        '-extensions',
        'leaf',
      ]);
    }
    return issued(name);
  };

  const responder = issue(
    'responder',
    '[ leaf ]\nbasicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n' +
      'extendedKeyUsage = OCSPSigning\nnoCheck = ignored\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n',
    { rsa: true },
  );
  const crl = `${base}/root.crl`;
  const leaves: Record<LeafName, IssuedCert> = {
    ocspGood: issue('ocspGood', leafExtensions({ ocsp: `${base}/ocsp/ca` })),
    ocspRevoked: issue('ocspRevoked', leafExtensions({ ocsp: `${base}/ocsp/ca` })),
    ocspUnknown: issue('ocspUnknown', leafExtensions({ ocsp: `${base}/ocsp/ca` }), { outsideDatabase: true }),
    ocspCounted: issue('ocspCounted', leafExtensions({ ocsp: `${base}/ocsp/counted` })),
    ocspTampered: issue('ocspTampered', leafExtensions({ ocsp: `${base}/ocsp/tampered` })),
    ocspReplayed: issue('ocspReplayed', leafExtensions({ ocsp: `${base}/ocsp/replayed` })),
    delegatedGood: issue('delegatedGood', leafExtensions({ ocsp: `${base}/ocsp/delegated` })),
    crlGood: issue('crlGood', leafExtensions({ crl })),
    crlRevoked: issue('crlRevoked', leafExtensions({ crl })),
    crlPem: issue('crlPem', leafExtensions({ crl: `${base}/root-pem.crl` })),
    fallback: issue('fallback', leafExtensions({ ocsp: `http://127.0.0.1:${deadPort}/`, crl })),
    garbage: issue('garbage', leafExtensions({ ocsp: `${base}/ocsp/garbage`, crl })),
    none: issue('none', leafExtensions({})),
  };
  run(['ca', '-config', 'openssl.cnf', '-revoke', 'ocspRevoked.pem', '-crl_reason', 'keyCompromise']);
  run(['ca', '-config', 'openssl.cnf', '-revoke', 'crlRevoked.pem', '-crl_reason', 'cessationOfOperation']);
  run(['ca', '-config', 'openssl.cnf', '-gencrl', '-out', 'root.crl.pem']);
  crlPem = readFileSync(join(dir, 'root.crl.pem'), 'utf8');
  crlDer = execFileSync('openssl', ['crl', '-in', join(dir, 'root.crl.pem'), '-outform', 'DER']);

  const startResponder = async (signer: string): Promise<number> => {
    const port = await freePort();
    const child = spawn(
      'openssl',
      [
        'ocsp',
        '-index',
        'index.txt',
        '-port',
        String(port),
        '-rsigner',
        `${signer}.pem`,
        '-rkey',
        `${signer}.key`,
        '-CA',
        'root.pem',
        '-ndays',
        '1',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    // Also when a test file dies before its after() hook: no responder outlives the run.
    process.once('exit', () => child.kill('SIGKILL'));
    await waitForListening(port, child);
    return port;
  };
  caPort = await startResponder('root');
  delegatedPort = await startResponder('responder');

  return {
    dir,
    root: issued('root'),
    responder,
    leaves,
    base,
    hits,
    setCaResponderUp: (up) => {
      caUp = up;
    },
    openssl: run,
    close: async () => {
      for (const child of children) child.kill('SIGKILL');
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
