// OriginPools (src/egress/origin-pools.ts) against real loopback HTTP servers: idle origins beyond
// the bound are closed least recently used first, an origin with a request on it never is, and a
// closed origin opens again on its next request.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OriginPools } from '../../src/egress/origin-pools.ts';

interface Upstream {
  readonly origin: string;
  readonly server: Server;
  /** Connections the server has now. */
  readonly open: Set<Socket>;
  /** Connections it has seen in all. */
  accepted: number;
}

const servers: Server[] = [];
let pools: OriginPools | undefined;

afterEach(async () => {
  await pools?.destroy();
  pools = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function upstream(answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end('ok')): Promise<Upstream> {
  const server = createServer({ keepAliveTimeout: 60_000 }, answer);
  servers.push(server);
  const up = { server, open: new Set<Socket>(), accepted: 0, origin: '' };
  server.on('connection', (socket: Socket) => {
    up.accepted++;
    up.open.add(socket);
    socket.on('close', () => up.open.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  up.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return up;
}

async function get(via: OriginPools, origin: string): Promise<string> {
  const res = await via.request({ origin, path: '/', method: 'GET' });
  return await res.body.text();
}

/** Waits (bounded, 3 s) until `check` holds: a closed pool's sockets close a moment after close(). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('OriginPools', () => {
  it('keeps at most the bound of idle origins connected, closing the least recently used', async () => {
    const ups = await Promise.all([0, 1, 2, 3, 4].map(() => upstream()));
    pools = new OriginPools({ keepAliveTimeout: 60_000 }, 2);
    for (const up of ups) expect(await get(pools, up.origin)).toBe('ok');
    // The third origin's pool pushed out the first, the fourth the second, the fifth the third.
    expect(pools.origins).toBe(2);
    await until(() => ups.slice(0, 3).every((u) => u.open.size === 0));
    expect(ups[3]!.open.size).toBe(1);
    expect(ups[4]!.open.size).toBe(1);

    // Use the older of the two kept, then a new origin: the one not used since goes.
    expect(await get(pools, ups[3]!.origin)).toBe('ok');
    expect(await get(pools, ups[0]!.origin)).toBe('ok');
    await until(() => ups[4]!.open.size === 0);
    expect(ups[3]!.open.size).toBe(1);
    expect(ups[3]!.accepted).toBe(1); // its connection was reused, not reopened
    expect(ups[0]!.accepted).toBe(2); // closed once, opened again on its next request
  });

  it('never closes an origin with a request on it, however many origins come after', async () => {
    const releases: Array<() => void> = [];
    const slow = await upstream((_q, res) => {
      releases.push(() => res.end('late'));
    });
    const others = await Promise.all([0, 1, 2].map(() => upstream()));
    pools = new OriginPools({ keepAliveTimeout: 60_000 }, 1);
    const pending = get(pools, slow.origin);
    await until(() => releases.length === 1);
    for (const up of others) expect(await get(pools, up.origin)).toBe('ok');
    // The busy origin and the one idle origin the bound allows; the other two were closed.
    expect(pools.origins).toBe(2);
    await until(() => others[0]!.open.size === 0 && others[1]!.open.size === 0);
    expect(others[2]!.open.size).toBe(1);
    releases[0]?.();
    expect(await pending).toBe('late');
    // Its pool was kept: the next request goes on the same connection (once undici has marked that
    // connection free, a turn of the event loop after the answer ended; before, the pool opens another).
    await new Promise((r) => setTimeout(r, 20));
    const again = get(pools, slow.origin);
    await until(() => releases.length === 2);
    releases[1]?.();
    expect(await again).toBe('late');
    expect(slow.accepted).toBe(1);
  });

  it('closes origins that were busy when the bound was passed once they are idle', async () => {
    const releases: Array<() => void> = [];
    const held = await Promise.all(
      [0, 1, 2, 3].map(() =>
        upstream((_q, res) => {
          releases.push(() => res.end('held'));
        }),
      ),
    );
    pools = new OriginPools({ keepAliveTimeout: 60_000 }, 1);
    const answers = held.map((up) => get(pools as OriginPools, up.origin));
    await until(() => releases.length === 4);
    expect(pools.origins).toBe(4);
    for (const release of releases) release();
    expect(await Promise.all(answers)).toEqual(['held', 'held', 'held', 'held']);
    // Within the second's recheck, all but the most recently used idle origin are closed.
    await until(() => pools?.origins === 1);
    await until(() => held.filter((u) => u.open.size > 0).length === 1);
  });

  it('lets an origin whose connection closed by itself go, and opens it again on the next request', async () => {
    const up = await upstream();
    pools = new OriginPools({ keepAliveTimeout: 60_000 }, 8);
    expect(await get(pools, up.origin)).toBe('ok');
    expect(pools.origins).toBe(1);
    up.server.closeAllConnections();
    await until(() => pools?.origins === 0);
    expect(await get(pools, up.origin)).toBe('ok');
    expect(up.accepted).toBe(2);
  });

  it('refuses requests once closed', async () => {
    const up = await upstream();
    pools = new OriginPools({}, 2);
    expect(await get(pools, up.origin)).toBe('ok');
    await pools.close();
    await until(() => up.open.size === 0);
    await expect(get(pools, up.origin)).rejects.toThrow(/closed/i);
  });
});
