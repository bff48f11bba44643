// One binary HTTP exchange (RFC 3161 time-stamp queries, OCSP requests, CRL downloads): a timeout
// over the whole answer, a cap on its size, TLS always verified (platform roots plus an optional
// extra CA). No retries here: callers decide what a failure means. Headers may carry credentials
// (a TSA's Basic or Bearer auth), so they never reach an error message.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { SealerError } from './errors';

export interface BinaryRequest {
  method: 'GET' | 'POST';
  body?: Buffer;
  /** Content-Type of `body`, e.g. `application/timestamp-query`. */
  contentType?: string;
  accept?: string;
  /** Extra headers (e.g. `authorization`); never logged or put in errors. */
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Most bytes the answer's body may have; a longer one is cut off and refused. */
  maxBytes: number;
  /** Extra CA (PEM) trusted beside the platform's roots, for an https URL. */
  caPem?: string | Buffer;
}

export interface BinaryAnswer {
  status: number;
  /** The answer's Content-Type without parameters, lower case ('' when absent). */
  contentType: string;
  body: Buffer;
}

/** The exchange did not complete: no answer, a timeout, a cut connection, an over-long body. */
export class HttpTransportError extends SealerError {
  constructor(
    readonly url: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const agents = new Map<string, https.Agent>();

function agentFor(caPem: string | Buffer | undefined): https.Agent | undefined {
  if (caPem === undefined) return undefined;
  const key = caPem.toString();
  let agent = agents.get(key);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, ca: [...tls.rootCertificates, key] });
    agents.set(key, agent);
  }
  return agent;
}

/** Origin and path only: a URL's query or userinfo may hold a token. */
function describe(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export function requestBytes(rawUrl: string, r: BinaryRequest): Promise<BinaryAnswer> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch (cause) {
    return Promise.reject(new HttpTransportError(rawUrl, `not a URL: ${JSON.stringify(rawUrl)}`, { cause }));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(
      new HttpTransportError(rawUrl, `${describe(url)}: only http and https URLs are fetched`),
    );
  }
  const where = describe(url);
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.contentType) headers['content-type'] = r.contentType;
  if (r.accept) headers.accept = r.accept;
  if (r.body) headers['content-length'] = String(r.body.length);
  const transport = url.protocol === 'https:' ? https : http;

  return new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(r.timeoutMs);
    let settled = false;
    const fail = (message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      reject(
        new HttpTransportError(
          rawUrl,
          signal.aborted ? `${where}: no complete answer within ${r.timeoutMs} ms` : `${where}: ${message}`,
          { cause },
        ),
      );
    };
    const req = transport.request(
      url,
      {
        method: r.method,
        headers,
        signal,
        ...(url.protocol === 'https:' && r.caPem !== undefined ? { agent: agentFor(r.caPem) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > r.maxBytes) {
            fail(`answer is over ${r.maxBytes} bytes`);
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => fail((err as Error).message, err));
        res.on('end', () => {
          if (!res.complete) return fail('connection closed before the answer was complete');
          if (settled) return;
          settled = true;
          resolve({
            status: res.statusCode ?? 0,
            contentType: (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase(),
            body: Buffer.concat(chunks),
          });
        });
      },
    );
    req.on('error', (err) => fail((err as Error).message, err));
    req.end(r.body);
  });
}
