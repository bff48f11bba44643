// Peers that fail the two ways a health check or a scrape must survive: a port nobody listens on
// (refused at once) and a server that accepts connections and never says a word (hangs).
import net from 'node:net';
import { after } from 'node:test';

export interface DeadPeers {
  closedPort: number;
  hangPort: number;
}

/** Both peers on 127.0.0.1; the hanging server is stopped when the test file finishes. */
export async function deadPeers(): Promise<DeadPeers> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const sockets = new Set<net.Socket>();
  const hang = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
  });
  return { closedPort, hangPort: (hang.address() as net.AddressInfo).port };
}
