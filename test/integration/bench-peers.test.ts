// The bench's same-run peers and s7, on real processes: squid (ssl-bump) run as a child injects the
// bench credential and is measured (requests, CPU, memory) and cleaned up; without squid the bench
// says how to install it; s7 measures 64 streams on one HTTP/2 connection direct and through a proxy
// that negotiates h2, and reports n/a (not a failure) through one that does not.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect as h2connect, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { benchLookup, proxyRoute, type Tally } from '../../bench/clients.ts';
import { startFloorChild } from '../../bench/floor-child.ts';
import { directH2, keywayH2, s7Rounds, s7Streams, startH2Upstream } from '../../bench/h2.ts';
import { startPeers } from '../../bench/peers.ts';
import { isZombie, processTree } from '../../bench/proc.ts';
import { MAIN_HOST, s2Parallel, type Context } from '../../bench/scenarios.ts';
import { startSquidChild } from '../../bench/squid-child.ts';
import { benchLeaf, startBenchUpstream } from '../../bench/upstream.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

const newSecret = () => `kwb-test-${randomBytes(16).toString('hex')}`;
const bounds = { maxCount: 400, maxMs: 1500 };

describe('bench peer: squid ssl-bump as a child process', () => {
  it('injects the credential the upstream checks, is measured, and leaves no process or file behind', async () => {
    const secret = newSecret();
    const upstream = await startBenchUpstream(secret);
    cleanup.push(() => upstream.close());
    const squid = await startSquidChild({ hosts: [MAIN_HOST], injectDomains: ['.bench.test'], secret, upstreamCaPath: TLS_FIXTURES.caPath });
    cleanup.push(() => squid.stop());
    const tally: Tally = { badStatus: 0, badBody: 0 };
    const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 20_000, warmupMs: 200 };
    const route = proxyRoute('squid', squid.url, squid.caPem, TLS_FIXTURES.ca, squid.cpuMs);

    const result = await s2Parallel(route, ctx, { connections: 8, bounds });

    expect(tally).toEqual({ badStatus: 0, badBody: 0 });
    expect(result.requests).toBeGreaterThan(0);
    // Every request went through squid (the marker) and arrived with the credential squid added.
    expect(upstream.counts.viaPeer['squid']?.requests).toBeGreaterThanOrEqual(result.requests);
    expect(upstream.counts.viaPeer['squid']?.withoutCredential).toBe(0);
    expect(upstream.counts.withoutCredential).toBe(0);
    expect(result.cpuMs).toBeGreaterThan(0);
    expect(squid.memory().rssMiB).toBeGreaterThan(5);
    // squid's certificate helper runs as its child: the CPU and memory figures cover the tree.
    const tree = processTree(squid.pid);
    expect(tree.length).toBeGreaterThan(1);

    await squid.stop();
    expect(existsSync(squid.dir)).toBe(false);
    for (const pid of tree) expect(existsSync(`/proc/${pid}`) && !isZombie(pid), `pid ${pid} still running`).toBe(false);
  });

  it('without squid, the bench prints one line saying how to install it and runs without the peer', async () => {
    const lines: string[] = [];
    const peers = await startPeers({
      squid: true,
      floor: false,
      hosts: [MAIN_HOST],
      domainSuffix: '.bench.test',
      secret: newSecret(),
      upstreamCaPath: TLS_FIXTURES.caPath,
      upstreamCa: TLS_FIXTURES.ca,
      squidBinary: '/nonexistent/sbin/squid',
      log: (line) => lines.push(line),
    });
    cleanup.push(() => peers.stop());
    expect(peers.squid).toBeUndefined();
    expect(peers.routes).toEqual([]);
    expect(lines).toEqual([expect.stringContaining('apt-get install squid-openssl')]);
  });
});

describe('bench s7: 64 streams on one HTTP/2 connection', () => {
  it('measures direct HTTP/2 and a proxy that negotiates h2, with the credential checked upstream', async () => {
    const secret = newSecret();
    const h2 = await startH2Upstream(secret);
    cleanup.push(() => h2.close());
    const proxy = await startH2InterceptingProxy(h2.port, secret);
    cleanup.push(() => proxy.close());
    const tally: Tally = { badStatus: 0, badBody: 0 };
    const warmup = { maxCount: 1000, maxMs: 200 };
    const plan = { streams: 64, bounds };

    const s7 = await s7Rounds(keywayH2(proxy.url, MAIN_HOST, h2.port, [TLS_FIXTURES.ca]), directH2(MAIN_HOST, h2.port, TLS_FIXTURES.ca, secret), 2, (route) =>
      s7Streams(route, MAIN_HOST, plan, warmup, bounds, tally),
    );

    expect(tally).toEqual({ badStatus: 0, badBody: 0 });
    expect(s7.ran).toBe(true);
    expect(s7.rounds).toHaveLength(2);
    expect(s7.figures?.direct.rps).toBeGreaterThan(0);
    expect(s7.figures?.keyway.rps).toBeGreaterThan(0);
    expect(Number.isFinite(s7.ratio)).toBe(true);
    expect(h2.counts.overH2).toBe(h2.counts.requests);
    expect(h2.counts.viaKeyway).toBeGreaterThan(0);
    expect(h2.counts.withoutCredential).toBe(0);
    // The client leg through the proxy carried no credential: the proxy added it.
    expect(proxy.sawAuthorization()).toBe(false);
  });

  it('reports n/a, not a failure, through a proxy that does not negotiate h2', async () => {
    const secret = newSecret();
    const h2 = await startH2Upstream(secret);
    cleanup.push(() => h2.close());
    const floor = await startFloorChild({ hosts: [MAIN_HOST], secret, upstreamCaPath: TLS_FIXTURES.caPath });
    cleanup.push(() => floor.stop());
    const tally: Tally = { badStatus: 0, badBody: 0 };
    let directRuns = 0;

    const s7 = await s7Rounds(
      keywayH2(floor.url, MAIN_HOST, h2.port, [floor.caPem, TLS_FIXTURES.ca]),
      directH2(MAIN_HOST, h2.port, TLS_FIXTURES.ca, secret),
      3,
      (route) => {
        if (route.name === 'direct') directRuns++;
        return s7Streams(route, MAIN_HOST, { streams: 64, bounds }, { maxCount: 10, maxMs: 100 }, bounds, tally);
      },
    );

    expect(s7.ran).toBe(false);
    expect(s7.note).toMatch(/^n\/a \(keyway did not negotiate h2; it chose /);
    expect(directRuns).toBe(0);
    expect(h2.counts.requests).toBe(0);
  });
});

/**
 * A minimal intercepting proxy that offers h2 on the client leg, standing in for keyway once it does:
 * CONNECT, TLS with ALPN h2 (a leaf from the test CA), each stream forwarded over HTTP/2 to the
 * upstream with the credential added.
 */
async function startH2InterceptingProxy(upstreamPort: number, secret: string) {
  const { cert, key } = benchLeaf();
  let sawAuthorization = false;
  const upstream = h2connect(`https://${MAIN_HOST}:${upstreamPort}`, { ca: TLS_FIXTURES.ca, lookup: benchLookup });
  const inner = createSecureServer({ cert, key });
  inner.on('stream', (stream, headers) => {
    if (headers.authorization !== undefined) sawAuthorization = true;
    const forwarded = { ...headers, authorization: `Bearer ${secret}` };
    const up = upstream.request(forwarded);
    up.on('response', (h) => {
      const { ':status': status, ...rest } = h;
      stream.respond({ ':status': status, ...rest });
      up.pipe(stream);
    });
    up.on('error', () => stream.destroy());
    stream.pipe(up);
  });
  const outer = createHttpServer();
  outer.on('connect', (_req, socket) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // The secure server does the TLS handshake, with ALPN h2, on the tunnelled socket.
    inner.emit('connection', socket);
  });
  await new Promise<void>((resolve) => outer.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(outer.address() as AddressInfo).port}`,
    sawAuthorization: () => sawAuthorization,
    close: async () => {
      upstream.destroy();
      outer.closeAllConnections();
      await new Promise<void>((resolve) => outer.close(() => resolve()));
    },
  };
}
