// HTTP plumbing for the sandbox: reading bounded bodies, parsing JSON and form requests, rendering and
// writing JSON responses (HTML pages and redirects for the approval page), and typed parameter readers that refuse with the CSC spec's "Missing (or invalid type)"
// and "Invalid parameter" errors. No route logic here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cscErrors } from './csc-errors';

export const MAX_BODY_BYTES = 1024 * 1024;

export type Params = Record<string, unknown>;

/** Collects the body; past `limit` it drains the rest (so the 413 reply can still be sent) and refuses. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size <= limit) chunks.push(buf);
  }
  if (size > limit) throw cscErrors.payloadTooLarge(limit);
  return Buffer.concat(chunks);
}

function mediaType(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  return header === undefined ? undefined : (header.split(';')[0] ?? '').trim().toLowerCase();
}

/** CSC methods take a JSON object; an empty body counts as `{}` so missing parameters are named. */
export function parseJsonParams(req: IncomingMessage, body: Buffer): Params {
  const type = mediaType(req);
  if (type !== undefined && type !== 'application/json') {
    throw cscErrors.badRequest(`Unsupported Content-Type ${JSON.stringify(type)}; use application/json`);
  }
  return parseJsonObject(body);
}

/** The OAuth2 token endpoint takes a form (RFC 6749); JSON is accepted too, as many providers do. */
export function parseFormOrJsonParams(req: IncomingMessage, body: Buffer): Params {
  const type = mediaType(req);
  if (type === 'application/json') return parseJsonObject(body);
  if (type === 'application/x-www-form-urlencoded' || (type === undefined && body.length === 0)) {
    const params: Params = {};
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) {
      if (key in params) throw cscErrors.badRequest(`Parameter ${key} is repeated`);
      params[key] = value;
    }
    return params;
  }
  throw cscErrors.badRequest(
    `Unsupported Content-Type ${JSON.stringify(type ?? '')}; use application/x-www-form-urlencoded`,
  );
}

function parseJsonObject(body: Buffer): Params {
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw cscErrors.badRequest('Malformed JSON request body');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw cscErrors.badRequest('The JSON request body must be an object');
  }
  return value as Params;
}

/** An answer ready for the wire: what sendRouteResult writes, and what a `drop:mid` fault cuts short. */
export interface RenderedAnswer {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

function renderJson(status: number, body: unknown, headers: Record<string, string>): RenderedAnswer {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return {
    status,
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': bytes.length,
      'Cache-Control': 'no-store',
      ...headers,
    },
    body: bytes,
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  writeAnswer(res, renderJson(status, body, headers));
}

/** What a route answers: a JSON body, an HTML page, or a 302 redirect to `location`. */
export function renderRouteResult(
  status: number,
  result: {
    body?: unknown;
    html?: string;
    location?: string;
    binary?: { contentType: string; bytes: Buffer };
  },
  headers: Record<string, string> = {},
): RenderedAnswer {
  if (result.binary !== undefined) {
    return {
      status,
      headers: {
        'Content-Type': result.binary.contentType,
        'Content-Length': result.binary.bytes.length,
        'Cache-Control': 'no-store',
        ...headers,
      },
      body: result.binary.bytes,
    };
  }
  if (result.location !== undefined) {
    // The Location carries an authorization code: never cached, never sent on as a Referer.
    return {
      status: 302,
      headers: {
        Location: result.location,
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'Content-Length': 0,
        ...headers,
      },
      body: Buffer.alloc(0),
    };
  }
  if (result.html !== undefined) {
    const bytes = Buffer.from(result.html, 'utf8');
    return {
      status,
      headers: {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': bytes.length,
        'Cache-Control': 'no-store',
        // No script, no framing (an approval page must not be clickjacked), no leaking of the request URL.
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        'X-Frame-Options': 'DENY',
        'Referrer-Policy': 'no-referrer',
        ...headers,
      },
      body: bytes,
    };
  }
  return renderJson(status, result.body, headers);
}

export function writeAnswer(res: ServerResponse, answer: RenderedAnswer): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

export function sendRouteResult(
  res: ServerResponse,
  status: number,
  result: { body?: unknown; html?: string; location?: string },
  headers: Record<string, string> = {},
): void {
  writeAnswer(res, renderRouteResult(status, result, headers));
}

// Parameter readers. CSC section 7: a null value means the optional parameter is absent.

function present(p: Params, name: string): boolean {
  return p[name] !== undefined && p[name] !== null;
}

export function requireString(p: Params, name: string): string {
  const v = p[name];
  if (typeof v !== 'string' || v === '') throw cscErrors.missingParam(name, 'string');
  return v;
}

export function optionalString(p: Params, name: string): string | undefined {
  if (!present(p, name)) return undefined;
  const v = p[name];
  if (typeof v !== 'string') throw cscErrors.missingParam(name, 'string');
  return v;
}

export function requireInteger(p: Params, name: string): number {
  const v = p[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw cscErrors.missingParam(name, 'integer');
  return v;
}

export function optionalBoolean(p: Params, name: string): boolean | undefined {
  if (!present(p, name)) return undefined;
  const v = p[name];
  if (typeof v !== 'boolean') throw cscErrors.invalidParam(name, 'expected a boolean');
  return v;
}

export function isPresent(p: Params, name: string): boolean {
  return present(p, name);
}

/** An array of canonical Base64 digests of exactly `digestLength` bytes each. */
export function requireHashArray(p: Params, name: string, digestLength: number): Buffer[] {
  const v = p[name];
  if (!Array.isArray(v)) throw cscErrors.missingParam(name, 'array');
  if (v.length === 0) throw cscErrors.emptyHashArray(name);
  return v.map((item, i) => {
    if (typeof item !== 'string') throw cscErrors.invalidBase64Hash(name, i);
    const bytes = Buffer.from(item, 'base64');
    // Buffer.from ignores junk; a round trip is the only strict Base64 check it offers.
    if (item === '' || bytes.toString('base64') !== item) throw cscErrors.invalidBase64Hash(name, i);
    if (bytes.length !== digestLength) throw cscErrors.invalidDigestLength(i, bytes.length, digestLength);
    return bytes;
  });
}
