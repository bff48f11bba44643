// The product's one HTTP transport is undici 7 (undici 8 needs Node 22): CSC calls, OAuth2 token
// exchanges, time stamps, OCSP and CRLs all go through its request(). This module owns the agents
// that trust an extra CA beside the platform's roots; without one, undici's global dispatcher (and
// the platform's roots) serve. TLS is always verified: there is deliberately no way to skip it.
import tls from 'node:tls';
import { Agent, type Dispatcher } from 'undici';

export type { Dispatcher };

// One agent per extra CA, shared by every client that trusts it: its kept-alive connections are
// reused across clients, and a token exchange or health probe does not leave an agent behind each time.
const agents = new Map<string, Agent>();

/**
 * An undici agent that trusts the platform's roots plus `caPem` (one or more PEM certificates). Node's
 * `ca` option replaces the default roots rather than adding to them, hence the explicit union.
 */
export function extraCaDispatcher(caPem: string | Buffer): Dispatcher {
  const key = caPem.toString();
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent({ connect: { ca: [...tls.rootCertificates, key] } });
    agents.set(key, agent);
  }
  return agent;
}

/** A header of an undici answer as one string (repeated headers joined), or null when absent. */
export function headerValue(headers: Dispatcher.ResponseData['headers'], name: string): string | null {
  const v = headers[name.toLowerCase()];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
}
