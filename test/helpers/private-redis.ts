// A redis-server of a test's own (AOF on, in the test's folder, on a free loopback port) that the test
// may kill and start again on the same port and data: for outage and restart tests, which must never
// touch the shared Redis other tests use.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after } from 'node:test';
import { redisAnswers } from '../../src/common/redis';

export interface PrivateRedis {
  url: string;
  port: number;
  /** starts it (again), on the same port and data folder; resolves once it answers */
  start(): Promise<void>;
  /** SIGKILL: gone at once, as in a crash; AOF (fsync always) keeps every acknowledged write */
  kill(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export async function privateRedis(dir: string): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const handle: PrivateRedis = {
    url,
    port,
    async start() {
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--dir',
          dir,
          '--dbfilename',
          'dump.rdb',
        ],
        { stdio: 'ignore', cwd: path.resolve(dir) },
      );
      const deadline = Date.now() + 20_000;
      while (!(await redisAnswers(url))) {
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`redis-server did not start on ${port}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
  };
  after(() => handle.kill());
  await handle.start();
  return handle;
}
