import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { FLAG, FRAME, frame, frameReader, headerBlock, PREFACE, ping, requestFields, rstStream, settingsFrame } from '../helpers/h2-frames.ts';
import { h2Request, h2ThroughProxy, tlsThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// HTTP/2's own attacks, written frame by frame over TLS through a CONNECT (h2-frames.ts). For each:
// the attacking connection is cut or its excess refused, nothing past the limit reaches the
// upstream, and keyway goes on serving another client. Every loop is bounded in count and time.

const PROTOCOL_ERROR = 1;

/** The last stream id keyway's GOAWAY says it processed. */
function lastStreamOf(reader: ReturnType<typeof frameReader>): number {
  const goaway = reader.frames.find((f) => f.type === FRAME.GOAWAY);
  return goaway ? goaway.payload.readUInt32BE(0) & 0x7fffffff : Number.POSITIVE_INFINITY;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < deadline && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  return check();
}

/** Writes `count` frames made by `make`, in batches that wait for the socket to drain; stops if it closes. */
async function flood(tls: TLSSocket, count: number, make: (i: number) => Buffer, timeMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeMs;
  let sent = 0;
  while (sent < count && !tls.destroyed && tls.writable && Date.now() < deadline) {
    const batch: Buffer[] = [];
    for (let j = 0; j < 100 && sent < count; j++) batch.push(make(sent++));
    if (!tls.write(Buffer.concat(batch))) await drainedOrClosed(tls, 1000);
  }
  return sent;
}

/**
 * Waits for 'drain' or 'close', at most `ms`. The waits that lose are taken off the socket: left
 * on, every batch added a 'close' and an 'error' listener (Node warned of a leak past ten).
 */
async function drainedOrClosed(tls: TLSSocket, ms: number): Promise<void> {
  const done = new AbortController();
  const { signal } = done;
  try {
    await Promise.race([once(tls, 'drain', { signal }), once(tls, 'close', { signal }), new Promise((r) => setTimeout(r, ms))]);
  } catch {
    // The socket failed: the loop sees it destroyed.
  } finally {
    done.abort();
  }
}

describe('HTTP/2 attacks are bounded', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let authority: string;
  const rssBefore = process.memoryUsage().rss;

  beforeAll(async () => {
    upstream = await startUpstream();
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({ grants: [{ id: 'h2atk', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const seenTagged = (tag: string) => upstream.seen.filter((s) => s.url.includes(`tag=${tag}`)).length;

  /** An attacker's connection: TLS with h2 chosen, the preface and SETTINGS sent, keyway's SETTINGS read and acknowledged. */
  async function attacker(options: { read?: boolean } = {}) {
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath);
    expect(tls.alpnProtocol).toBe('h2');
    tls.write(Buffer.concat([PREFACE, settingsFrame()]));
    const reader = frameReader(tls);
    expect(await until(() => reader.frames.some((f) => f.type === FRAME.SETTINGS && f.flags & FLAG.ACK), 5_000)).toBe(true);
    if (options.read === false) {
      tls.removeAllListeners('data');
      tls.pause();
    }
    return { tls, reader };
  }

  /** Another client, meanwhile: served as usual. */
  async function stillServes(tag: string) {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const r = await h2Request(session, { ':path': `/echo?tag=${tag}` }, undefined, 5_000);
      expect(r.headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  }

  it('advertises its limits: 100 concurrent streams, a 64 KiB header list, no push', async () => {
    const { tls, reader } = await attacker();
    const settings = reader.frames.find((f) => f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK))!;
    const values = new Map<number, number>();
    for (let i = 0; i + 6 <= settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    expect(values.get(0x3)).toBe(100); // SETTINGS_MAX_CONCURRENT_STREAMS
    expect(values.get(0x6)).toBe(64 * 1024); // SETTINGS_MAX_HEADER_LIST_SIZE
    expect(values.get(0x2)).toBe(0); // SETTINGS_ENABLE_PUSH
    tls.destroy();
  });

  it('rapid reset (CVE-2023-44487): streams opened and cancelled at once end the session', async () => {
    const { tls, reader } = await attacker();
    const streams = 5_000;
    const block = headerBlock(requestFields(authority, '/slow?ms=2000&tag=rapid-reset'));
    const sent = await flood(tls, streams, (i) =>
      Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, block), rstStream(2 * i + 1)]),
    );
    expect(await until(() => reader.closed() || reader.goaway() !== undefined, 5_000)).toBe(true);
    // Two limits each end such a session (checked by lifting them in turn): nghttp2's reset rate
    // (streamResetBurst, 200) and node's count of rejected streams (maxSessionRejectedStreams).
    // The GOAWAY names the last stream processed: a few hundred in, not thousands.
    expect(reader.goaway()).toBeDefined();
    expect(lastStreamOf(reader)).toBeLessThan(2 * 400);
    expect(sent).toBeGreaterThan(400);
    await stillServes('after-rapid-reset');
    // Far fewer than were opened reached the upstream.
    expect(seenTagged('rapid-reset')).toBeLessThan(500);
    tls.destroy();
  });

  it('streams past maxConcurrentStreams are refused and never go upstream', async () => {
    const { tls, reader } = await attacker();
    const block = headerBlock(requestFields(authority, '/slow?ms=1500&tag=concurrent'));
    await flood(tls, 150, (i) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, block));
    // Past the advertised (and acknowledged) limit, nghttp2 ends the session: PROTOCOL_ERROR.
    expect(await until(() => reader.goaway() !== undefined, 5_000)).toBe(true);
    expect(reader.goaway()).toBe(PROTOCOL_ERROR);
    await stillServes('after-concurrent');
    expect(seenTagged('concurrent')).toBeLessThanOrEqual(100);
    tls.destroy();
  });

  it('a header list over 64 KiB is refused before anything goes upstream', async () => {
    const { tls, reader } = await attacker();
    const block = headerBlock(requestFields(authority, '/echo?tag=big-headers', 'GET', [['x-big', 'a'.repeat(70_000)]]));
    const pieces: Buffer[] = [];
    for (let at = 0; at < block.length; at += 16_384) pieces.push(block.subarray(at, at + 16_384));
    tls.write(
      Buffer.concat(
        pieces.map((piece, i) =>
          frame(i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, (i === 0 ? FLAG.END_STREAM : 0) | (i === pieces.length - 1 ? FLAG.END_HEADERS : 0), 1, piece),
        ),
      ),
    );
    // A 431, a reset of the stream, or the end of the session: any of them, never the upstream.
    expect(await until(() => reader.frames.some((f) => f.streamId === 1 || f.type === FRAME.GOAWAY) || reader.closed(), 5_000)).toBe(true);
    await stillServes('after-big-headers');
    expect(seenTagged('big-headers')).toBe(0);
    tls.destroy();
  });

  it('a CONTINUATION flood (a header block that never ends) ends the session', async () => {
    const { tls, reader } = await attacker();
    tls.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headerBlock(requestFields(authority, '/echo?tag=continuation'))));
    const sent = await flood(tls, 100_000, () => frame(FRAME.CONTINUATION, 0, 1, headerBlock([['x-c', 'v']])));
    expect(await until(() => reader.closed() || reader.goaway() !== undefined, 5_000)).toBe(true);
    expect(sent).toBeLessThan(100_000);
    await stillServes('after-continuation');
    expect(seenTagged('continuation')).toBe(0);
    tls.destroy();
  });

  for (const [name, make] of [
    ['SETTINGS', () => settingsFrame([[0x4, 65_535]])],
    ['PING', (i: number) => ping(i)],
  ] as const) {
    it(`a ${name} flood from a client that never reads the acknowledgements is cut off or stalled, memory bounded`, async () => {
      const { tls } = await attacker({ read: false });
      const rss = process.memoryUsage().rss;
      // 1,000,000 frames is 9 to 17 MB. keyway either ends the session (nghttp2's flood check on
      // queued acknowledgements) or, once its answers back up, stops reading (node:http2 pauses
      // input while output is stuck): either way the flood cannot all be written.
      const sent = await flood(tls, 1_000_000, make, 5_000);
      expect(sent).toBeLessThan(1_000_000);
      await stillServes(`after-${name}`);
      expect((process.memoryUsage().rss - rss) / 2 ** 20).toBeLessThan(64);
      tls.destroy();
    });
  }

  it('connection-specific fields (RFC 9113 8.2.2) make a stream malformed: reset, never forwarded', async () => {
    const { tls, reader } = await attacker();
    const cases: Array<[string, string]> = [
      ['connection', 'keep-alive'],
      ['keep-alive', 'timeout=5'],
      ['proxy-connection', 'keep-alive'],
      ['transfer-encoding', 'chunked'],
      ['upgrade', 'websocket'],
      ['te', 'gzip'],
    ];
    cases.forEach(([name, value], i) => {
      tls.write(
        frame(
          FRAME.HEADERS,
          FLAG.END_HEADERS | FLAG.END_STREAM,
          2 * i + 1,
          headerBlock(requestFields(authority, `/echo?tag=conn-${name}`, 'GET', [[name, value]])),
        ),
      );
    });
    const resets = () => reader.frames.filter((f) => f.type === FRAME.RST_STREAM && f.payload.readUInt32BE(0) === PROTOCOL_ERROR);
    expect(await until(() => resets().length === cases.length || reader.goaway() !== undefined, 5_000)).toBe(true);
    expect(resets().map((f) => f.streamId)).toEqual(cases.map((_, i) => 2 * i + 1));
    // TE: trailers is the one TE allowed: that stream is served.
    tls.write(
      frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS | FLAG.END_STREAM,
        101,
        headerBlock(requestFields(authority, '/echo?tag=conn-te-trailers', 'GET', [['te', 'trailers']])),
      ),
    );
    expect(await until(() => seenTagged('conn-te-trailers') === 1, 5_000)).toBe(true);
    expect(upstream.seen.filter((r) => r.url.includes('tag=conn-') && !r.url.includes('te-trailers'))).toEqual([]);
    tls.destroy();
  });

  it('memory stays bounded after every attack', () => {
    const growthMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    expect(growthMiB).toBeLessThan(200);
  });
});
