// How injected faults look on the wire, made to match what real providers and networks do: CSC error
// bodies for statuses, answers that never come, connections cut before or in the middle of an
// answer, and signHash answers with a signature too few, one too many, or one that does not verify.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { cscErrors, type CscProtocolError } from './csc-errors';
import type { RenderedAnswer } from './http-io';
import type { SignaturesFaultRule, StatusFaultRule } from './types';

export function statusRefusal(rule: StatusFaultRule): CscProtocolError {
  switch (rule.status) {
    case 500:
      return cscErrors.serverError();
    case 503:
      return cscErrors.unavailable(rule.retryAfterSec);
    case 429:
      return cscErrors.tooManyRequests(rule.retryAfterSec ?? 1);
  }
}

/** Waits `ms`, or less if the client goes away first; false when it did (nothing left to answer). */
export async function delayUnlessClosed(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.closed || res.destroyed) return false;
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  try {
    await sleep(ms, undefined, { signal: gone.signal });
    return true;
  } catch {
    return false;
  } finally {
    res.off('close', onClose);
  }
}

/** Never answers: resolves once the connection closes (the client gave up, or the sandbox closed). */
export async function hangUntilClosed(res: ServerResponse): Promise<void> {
  if (res.closed || res.destroyed) return;
  await once(res, 'close');
}

/**
 * Cuts the connection: with `partial`, after its status line, headers (with the full Content-Length)
 * and the first half of its body have reached the socket, as when a provider dies mid-answer.
 */
export function dropConnection(res: ServerResponse, partial?: RenderedAnswer): void {
  if (partial === undefined) {
    res.destroy();
    return;
  }
  res.writeHead(partial.status, partial.headers);
  res.write(partial.body.subarray(0, Math.floor(partial.body.length / 2)), () => res.destroy());
}

/** A digest that is not the one asked for, to sign in its place. */
function anotherHash(digest: Buffer): Buffer {
  return createHash('sha256').update('not-this-hash').update(digest).digest();
}

/**
 * The signatures of a signHash answer, tampered with as `mode` says, at a position chosen by `draw`:
 * one removed, one extra (a real signature over another hash), one a real signature over another hash
 * (`wrong-hash`: well-formed, but it does not verify), or one with its last byte flipped (`corrupt`).
 */
export function tamperSignatures(
  signatures: readonly Buffer[],
  hashes: readonly Buffer[],
  mode: SignaturesFaultRule['mode'],
  draw: () => number,
  sign: (digest: Buffer) => Buffer,
): Buffer[] {
  const out = [...signatures];
  const at = Math.min(out.length - 1, Math.floor(draw() * out.length));
  switch (mode) {
    case 'missing':
      out.splice(at, 1);
      break;
    case 'extra':
      out.splice(Math.floor(draw() * (out.length + 1)), 0, sign(anotherHash(hashes[at]!)));
      break;
    case 'wrong-hash':
      out[at] = sign(anotherHash(hashes[at]!));
      break;
    case 'corrupt': {
      const bytes = Buffer.from(out[at]!);
      bytes[bytes.length - 1]! ^= 0x01;
      out[at] = bytes;
      break;
    }
  }
  return out;
}
