// One binary HTTP exchange (RFC 3161 time-stamp queries, OCSP requests, CRL downloads) over undici
// (./http-dispatcher.ts): a timeout over the whole answer, a cap on its size, TLS always verified
// (platform roots plus an optional extra CA). No retries here: callers decide what a failure means.
// Headers may carry credentials (a TSA's Basic or Bearer auth), so they never reach an error message.
import { request } from 'undici';
import { SealerError } from './errors';
import { extraCaDispatcher, headerValue, type Dispatcher } from './http-dispatcher';

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

/** Origin and path only: a URL's query or userinfo may hold a token. */
function describe(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export async function requestBytes(rawUrl: string, r: BinaryRequest): Promise<BinaryAnswer> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch (cause) {
    throw new HttpTransportError(rawUrl, `not a URL: ${JSON.stringify(rawUrl)}`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpTransportError(rawUrl, `${describe(url)}: only http and https URLs are fetched`);
  }
  const where = describe(url);
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.contentType) headers['content-type'] = r.contentType;
  if (r.accept) headers.accept = r.accept;
  const signal = AbortSignal.timeout(r.timeoutMs);
  const fail = (message: string, cause?: unknown) =>
    new HttpTransportError(
      rawUrl,
      // Whatever fails after the deadline (abort, reset socket) is the deadline's doing: say so.
      signal.aborted ? `${where}: no complete answer within ${r.timeoutMs} ms` : `${where}: ${message}`,
      { cause },
    );
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: r.method,
      headers,
      body: r.body,
      signal,
      ...(url.protocol === 'https:' && r.caPem !== undefined
        ? { dispatcher: extraCaDispatcher(r.caPem) }
        : {}),
    });
  } catch (err) {
    throw fail((err as Error).message, err);
  }
  const tooLong = () => fail(`answer is over ${r.maxBytes} bytes`);
  const declared = Number(headerValue(res.headers, 'content-length') ?? NaN);
  if (declared > r.maxBytes) {
    res.body.destroy();
    throw tooLong();
  }
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > r.maxBytes) {
        res.body.destroy();
        throw tooLong();
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof HttpTransportError) throw err;
    throw fail((err as Error).message, err);
  }
  return {
    status: res.statusCode,
    contentType: (headerValue(res.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase(),
    body: Buffer.concat(chunks),
  };
}
