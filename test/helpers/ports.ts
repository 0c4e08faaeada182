import { once } from 'node:events';
import { createServer } from 'node:net';

// A test that must name a port before anything binds it (a config's proxy.transparent.listen, an
// admin port given to two processes) takes one here. Such a port was once found by binding port 0
// and closing: the kernel then hands the same port to the next bind of port 0 anywhere on the
// machine, and with hundreds of servers and keyways started on port 0 by the tests running beside
// this one, one of them took it before our child bound it (CI, workers.test.ts: "the port is in use
// by another keyway"). So these ports come from below the kernel's ephemeral range (32768-60999
// here, /proc/sys/net/ipv4/ip_local_port_range), where no bind of port 0 lands, and each vitest
// worker takes its own block of that range, so two workers do not pick the same port either.
const LOW = 20_000;
const HIGH = 32_767;
const BLOCKS = 8;
const BLOCK_SIZE = Math.floor((HIGH - LOW + 1) / BLOCKS);
// Outside vitest (a bench, a script) the block is a random one.
const block = (Number(process.env.VITEST_POOL_ID) || Math.floor(Math.random() * BLOCKS)) % BLOCKS;
let next = Math.floor(Math.random() * BLOCK_SIZE);

/** A loopback port that is free now, outside the range the kernel gives to binds of port 0. */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < BLOCK_SIZE; tried++) {
    const port = LOW + block * BLOCK_SIZE + (next++ % BLOCK_SIZE);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port in ${LOW}-${HIGH} (block ${block})`);
}

async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  try {
    // once() rejects when 'error' comes first (EADDRINUSE: something holds the port).
    await once(server, 'listening');
  } catch {
    return false;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return true;
}
