// Issue 89, done-when: "narrowing the parent by reload narrows the child's open HTTP/1.1, HTTP/2 and
// WebSocket connections; removing the parent cuts the child". HTTP/1.1 is in delegation-curl; here,
// a child's HTTP/2 session (node:http2 through keyway to an h2-only loopback upstream) and its
// WebSocket (the `ws` client), each held open across a reload that takes the grant from the parent,
// and across the parent's removal. Waits poll with a generous cap: the machine is loaded.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CANARY } from '../helpers/fixtures.ts';
import { startH2Upstream, type H2Upstream } from '../helpers/h2-upstream.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const HOST = 'api.example.test';
const CUT_MS = 20_000;
const LEAD = {
  key: 'env:LEAD_KEY',
  grants: ['github', 'openai'],
};

describe("a child's open HTTP/2 and WebSocket connections follow its parent", () => {
  let h2: H2Upstream;
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    h2 = await startH2Upstream();
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY: 'lead-key-0123456789abcdef' },
      config: { agents: { lead: LEAD } },
      grants: [
        { id: 'github', type: 'bearer', domains: [HOST], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: ['other.example.test'], secret: 'kw-canary-openai-7d21' },
      ],
    });
  });
  afterAll(async () => {
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs]) expect(findLeak(text, CANARY), 'the secret in an output').toBeUndefined();
    await proxy?.stop();
    await h2?.close();
    await upstream?.close();
  });

  /** A child minted through the real CLI: its id and key. */
  const mint = async (parent: string, name: string, ...more: string[]): Promise<{ user: string; key: string }> => {
    const result = await proxy.cli(['agents', 'delegate', parent, '--name', name, '--grants', 'github', ...more, '--json']);
    expect(result.stderr).toBe('');
    const url = new URL((JSON.parse(result.stdout) as { proxy_url: string }).proxy_url);
    return { user: url.username, key: url.password };
  };
  const reloadLead = async (lead: typeof LEAD) => {
    const path = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(path, 'utf8')) as { agents: Record<string, unknown> };
    config.agents['lead'] = lead;
    writeFileSync(path, stringify(config));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
  };

  /** An HTTP/2 session as the child, once the proxy has read it from the store; an /echo on it answered 200. */
  const h2Session = (child: { user: string; key: string }): Promise<ClientHttp2Session> =>
    waitForAsync(async () => {
      const session = await h2ThroughProxy(proxy.port, `${HOST}:${h2.port}`, proxy.caPath, `${child.user}:${child.key}`).catch(() => undefined);
      if (session === undefined) return undefined;
      const first = await h2Request(session, { ':method': 'GET', ':path': '/echo' }).catch(() => undefined);
      if (Number(first?.headers[':status']) === 200) return session;
      session.destroy();
      return undefined;
    }, 'the child to be served over HTTP/2');
  /** A bidirectional stream held open: one chunk echoed back. */
  const openStream = async (session: ClientHttp2Session): Promise<ClientHttp2Stream> => {
    const stream = session.request({ ':method': 'POST', ':path': '/stream' });
    stream.on('error', () => undefined);
    stream.write('ping');
    const [chunk] = (await once(stream, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('ping');
    return stream;
  };

  /** A WebSocket as the child, open and echoing. */
  const webSocket = (child: { user: string; key: string }): Promise<WebSocket> =>
    waitForAsync(async () => {
      const auth = `Proxy-Authorization: Basic ${Buffer.from(`${child.user}:${child.key}`).toString('base64')}\r\n`;
      const tunnel = await openTunnel(proxy.port, `${HOST}:${upstream.port}`, auth).catch(() => undefined);
      if (tunnel === undefined) return undefined;
      const ws = new WebSocket(`wss://${HOST}:${upstream.port}/ws`, {
        createConnection: (() => tlsConnect({ socket: tunnel, servername: HOST, ca: readFileSync(proxy.caPath, 'utf8') })) as unknown as typeof netConnect,
      });
      ws.on('error', () => undefined);
      const opened = await Promise.race([once(ws, 'open').then(() => true), once(ws, 'close').then(() => false)]);
      if (!opened) return undefined;
      // The upstream's first message reports the Authorization it got (masked by the leak guard).
      await once(ws, 'message');
      ws.send('one');
      const [echo] = (await once(ws, 'message')) as [Buffer];
      expect(echo.toString()).toBe('echo:one');
      return ws;
    }, 'the child to be served over a WebSocket');
  const closeCode = (ws: WebSocket): Promise<number> => new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));

  /** What a cut must end, opened as the child: an HTTP/2 session with a stream in flight, and a WebSocket. */
  interface Open {
    session: ClientHttp2Session;
    stream: ClientHttp2Stream;
    /** The WebSocket's close code, when it closes. */
    wsClosed: Promise<number>;
    /** The session's close (listened for from the start, so a close before the await is seen). */
    sessionClosed: Promise<unknown>;
  }

  /** Opens both as `child`, runs `cut` with them, and lets both go whatever happened. */
  async function withOpen(child: { user: string; key: string }, cut: (open: Open) => Promise<void>): Promise<void> {
    const session = await h2Session(child);
    const ws = await webSocket(child);
    try {
      const stream = await openStream(session);
      const sessionClosed = once(session, 'close');
      // A test that does not wait for it must not see its rejection as unhandled.
      sessionClosed.catch(() => undefined);
      await cut({ session, stream, wsClosed: closeCode(ws), sessionClosed });
    } finally {
      session.destroy();
      ws.terminate();
    }
  }

  it('narrows an open HTTP/2 session and an open WebSocket when a reload takes the grant from the parent', async () => {
    const child = await mint('lead', 'worker');
    try {
      await withOpen(child, async ({ session, stream, wsClosed }) => {
        await reloadLead({ ...LEAD, grants: ['openai'] });
        // The open stream and the WebSocket are ended; nothing else goes up.
        await waitFor(() => (stream.closed ? true : undefined), 'the open HTTP/2 stream to be ended', CUT_MS);
        expect(await wsClosed).toBe(1008);
        const seen = h2.seen.length;
        const next = await h2Request(session, { ':method': 'GET', ':path': '/echo' }).then(
          (r) => ({ status: Number(r.headers[':status']), body: r.body.toString() }),
          (err: Error) => ({ status: 0, body: err.message }),
        );
        expect(next.status).not.toBe(200);
        expect(next.body).not.toContain(CANARY);
        expect(h2.seen.length).toBe(seen);
        const line = await waitFor(
          () => proxy.auditLines().find((l) => l['agent'] === 'worker' && String(l['message'] ?? '').includes('no longer admits agent "worker"')),
          "the ended exchange's audit line",
        );
        expect(line).toMatchObject({ chain: ['lead', 'worker'] });
      });
    } finally {
      await reloadLead(LEAD);
    }
    // The grant given back, the child is served again on a new session.
    (await h2Session(child)).destroy();
  });

  it("cuts the child's HTTP/2 session and WebSocket when its parent is removed", async () => {
    expect((await proxy.cli(['agents', 'add', 'temp-lead', '--grants', 'github,openai'])).code).toBe(0);
    const child = await mint('temp-lead', 'temp-worker');
    await withOpen(child, async ({ stream, wsClosed, sessionClosed }) => {
      const removed = await proxy.cli(['agents', 'rm', 'temp-lead']);
      expect(removed.code, removed.stderr).toBe(0);
      await waitFor(() => (stream.closed ? true : undefined), 'the open HTTP/2 stream to be cut', CUT_MS);
      await sessionClosed;
      expect(await wsClosed).not.toBe(1000);
      // Its key no longer opens anything.
      await expect(h2ThroughProxy(proxy.port, `${HOST}:${h2.port}`, proxy.caPath, `${child.user}:${child.key}`)).rejects.toThrow(/407/);
    });
  });

  it("ends a child's open HTTP/2 session and WebSocket at its TTL", async () => {
    // Long enough to be read by the proxy and connect on a loaded machine; the cut is then polled.
    const child = await mint('lead', 'brief', '--ttl', '8s');
    await withOpen(child, async ({ stream, wsClosed, sessionClosed }) => {
      await waitFor(() => (stream.closed ? true : undefined), 'the open HTTP/2 stream to end at the TTL', CUT_MS);
      await sessionClosed;
      expect(await wsClosed).not.toBe(1000);
      const line = await waitFor(
        () => proxy.auditLines().find((l) => l['agent'] === 'brief' && String(l['message'] ?? '').includes('agent "brief" expired at')),
        'the audit line of the ended connection',
      );
      expect(line).toMatchObject({ chain: ['lead', 'brief'] });
    });
  });
});
