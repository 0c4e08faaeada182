import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, connect as netConnect, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { canaryLeaks } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

// The body swap on WebSocket messages, Home Assistant style: the agent's first message is
// {"type":"auth","access_token":"keyway-placeholder-ha"}; the upstream answers auth_ok only for the
// real token (auth_invalid otherwise) and echoes what it got, which the leak guard masks on the way
// back. With and without permessage-deflate (keyway takes the agent's offer, inflates bounded, and
// sends on uncompressed), fragmented across continuation frames, and a compression bomb.

const SECRET = `${CANARY}-ha-long-lived-token`;
const OTHER_SECRET = 'kw-other-ws-secret-5c1d';
const KEY = 'ws-bot-key-81c2';
const HA = 'keyway-placeholder-ha';
const OTHER = 'keyway-placeholder-ha-admin';
const MASKED = '*'.repeat(SECRET.length);

let proxy: TestProxy;
let server: Server;
let port: number;
/** Every text message the upstream received, in order. */
const received: string[] = [];
/** The Sec-WebSocket-Extensions each upgrade reached the upstream with. */
const offers: Array<string | undefined> = [];

async function startHomeAssistant(): Promise<void> {
  // The upstream would compress if asked: keyway does not ask on its leg (the leak guard reads it).
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
  server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    offers.push(req.headers['sec-websocket-extensions']);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ type: 'auth_required' }));
      ws.on('message', (data: Buffer, binary: boolean) => {
        const text = data.toString('utf8');
        if (!binary) received.push(text);
        let message: { type?: string; access_token?: string } = {};
        try {
          message = JSON.parse(text) as typeof message;
        } catch {
          ws.send(`echo:${text.slice(0, 200)}`);
          return;
        }
        if (message.type !== 'auth') return void ws.send(JSON.stringify({ type: 'echo', text }));
        const ok = message.access_token === SECRET;
        ws.send(JSON.stringify({ type: ok ? 'auth_ok' : 'auth_invalid', you_sent: text }));
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  await startHomeAssistant();
  proxy = await startProxy({
    env: { BOT_KEY: KEY },
    config: {
      // Two messages cut off near 64 KiB each would spend this budget, were their memory not given back.
      proxy: { max_body_swap: '64KiB', max_replay_memory_per_agent: '128KiB', max_replay_memory: '128KiB' },
      agents: { bot: { key: 'env:BOT_KEY', grants: ['ha', 'ha-admin'] } },
    },
    grants: [
      { id: 'ha', type: 'bearer', domains: ['api.example.test'], secret: SECRET, inject: { body: true } },
      { id: 'ha-admin', type: 'bearer', domains: ['other.example.test'], secret: OTHER_SECRET, inject: { body: true } },
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

interface Client {
  ws: WebSocket;
  /** Every decrypted byte the agent received. */
  raw: () => Buffer;
  messages: string[];
  closed: Promise<number>;
}

/** A ws client through keyway's tunnel (ws takes no proxy setting: it gets the tunnelled TLS socket). */
async function openWs(path: string, deflate: false | { clientNoContextTakeover?: boolean }): Promise<Client> {
  const tunnel: Socket = await openTunnel(
    proxy.port,
    `api.example.test:${port}`,
    `Proxy-Authorization: Basic ${Buffer.from(`bot:${KEY}`).toString('base64')}\r\n`,
  );
  const bytes: Buffer[] = [];
  const ws = new WebSocket(`wss://api.example.test:${port}${path}`, {
    perMessageDeflate: deflate === false ? false : { threshold: 0, ...deflate },
    createConnection: (() => {
      const tls = tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: readFileSync(proxy.caPath, 'utf8') });
      tls.on('data', (c: Buffer) => bytes.push(c));
      return tls;
    }) as unknown as typeof netConnect,
  });
  const messages: string[] = [];
  ws.on('message', (data: Buffer) => messages.push(data.toString('utf8')));
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  ws.on('error', () => undefined);
  await Promise.race([once(ws, 'open'), new Promise((_, reject) => setTimeout(() => reject(new Error('no open in 5 s')), 5_000))]);
  await waitFor(() => (messages.length >= 1 ? true : undefined), 'auth_required');
  return { ws, raw: () => Buffer.concat(bytes), messages, closed };
}

async function answer(client: Client, n: number): Promise<Record<string, string>> {
  await waitFor(() => (client.messages.length > n ? true : undefined), `answer #${n}`);
  return JSON.parse(client.messages[n]!) as Record<string, string>;
}

async function auditLine(path: string): Promise<Record<string, unknown>> {
  return waitFor(() => proxy.auditLines().find((l) => l['path'] === path), `the audit line for ${path}`);
}

const auth = (token: string) => JSON.stringify({ type: 'auth', access_token: token });

describe('a Home Assistant style auth message', () => {
  it('without permessage-deflate: the placeholder becomes the secret; the echo is masked', async () => {
    const client = await openWs('/api/websocket?plain', false);
    client.ws.send(auth(HA));
    const reply = await answer(client, 1);
    expect(reply['type']).toBe('auth_ok');
    expect(reply['you_sent']).toBe(auth(MASKED));
    expect(received).toContain(auth(SECRET));
    client.ws.close();
    await client.closed;
    expect(findLeak(client.raw(), CANARY)).toBeUndefined();
    expect(await auditLine('/api/websocket')).toMatchObject({ grant: 'ha', status: 101, body_swap: 'swapped', body_swaps: 1 });
  });

  it("another grant's placeholder goes on as written, and the upstream refuses it", async () => {
    const client = await openWs('/api/websocket-other', false);
    client.ws.send(auth(OTHER));
    expect((await answer(client, 1))['type']).toBe('auth_invalid');
    expect(received).toContain(auth(OTHER));
    expect(received.join('\n')).not.toContain(OTHER_SECRET);
    client.ws.terminate();
    expect(await auditLine('/api/websocket-other')).toMatchObject({ body_swap: 'none', body_swaps: 0 });
  });

  it('with permessage-deflate and context takeover: every compressed message is inflated, swapped and sent on', async () => {
    const client = await openWs('/api/websocket-deflate', {});
    // keyway answered the agent's offer itself; the upstream was offered nothing.
    expect(client.ws.extensions).toContain('permessage-deflate');
    expect(offers.at(-1)).toBeUndefined();
    // The same text three times: later messages refer back into earlier ones' window.
    for (let i = 0; i < 3; i++) client.ws.send(auth(HA));
    for (let i = 1; i <= 3; i++) expect((await answer(client, i))['type']).toBe('auth_ok');
    client.ws.close();
    await client.closed;
    expect(findLeak(client.raw(), CANARY)).toBeUndefined();
    expect(await auditLine('/api/websocket-deflate')).toMatchObject({ body_swap: 'swapped', body_swaps: 3 });
  });

  it('with permessage-deflate and client_no_context_takeover', async () => {
    const client = await openWs('/api/websocket-nctx', { clientNoContextTakeover: true });
    expect(client.raw().toString('latin1')).toMatch(/sec-websocket-extensions: permessage-deflate; client_no_context_takeover\r\n/i);
    client.ws.send(auth(HA));
    client.ws.send(auth(HA));
    expect((await answer(client, 2))['type']).toBe('auth_ok');
    client.ws.terminate();
  });

  it('a placeholder split across continuation frames (fragments sent apart, compressed or not)', async () => {
    for (const deflate of [false, {}] as const) {
      const path = `/api/websocket-fragments-${deflate === false ? 'plain' : 'deflate'}`;
      const client = await openWs(path, deflate);
      const text = auth(HA);
      const cut = text.indexOf('placeholder') + 4;
      client.ws.send(text.slice(0, cut), { fin: false });
      await new Promise((r) => setTimeout(r, 50));
      client.ws.ping();
      client.ws.send(text.slice(cut), { fin: true });
      expect((await answer(client, 1))['type']).toBe('auth_ok');
      client.ws.terminate();
      expect(await auditLine(path)).toMatchObject({ body_swap: 'swapped' });
    }
  });
});

/** One masked client text frame, built by hand (for splitting it where ws would not). */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('test frames stay under 126 bytes');
  const mask = Buffer.from([0x1f, 0x2e, 0x3d, 0x4c]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

describe('a placeholder split across TCP chunks inside one frame', () => {
  it('is swapped: the frame is read whole before its message is', async () => {
    const client = await openWs('/api/websocket-tcp-split', false);
    const frame = maskedTextFrame(auth(HA));
    // Two header bytes and the mask, then the payload: cut four bytes into the placeholder.
    const cut = 6 + auth(HA).indexOf('placeholder') + 4;
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    socket.write(frame.subarray(0, cut));
    await new Promise((r) => setTimeout(r, 100));
    socket.write(frame.subarray(cut));
    expect((await answer(client, 1))['type']).toBe('auth_ok');
    client.ws.terminate();
  });
});

describe("Node's global WebSocket", () => {
  it('through keyway by NODE_USE_ENV_PROXY: the auth message is swapped', async () => {
    const script = `
      const ws = new WebSocket(process.argv[1]);
      const got = [];
      const timer = setTimeout(() => { console.error('no answer in 8 s'); process.exit(1); }, 8000);
      ws.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 1) ws.send(JSON.stringify({ type: 'auth', access_token: '${HA}' }));
        else { clearTimeout(timer); process.stdout.write(got[1]); ws.close(); }
      };
      ws.onerror = (e) => { console.error('error', e.message ?? ''); process.exit(1); };
    `;
    const env = cleanEnv({ HTTPS_PROXY: `http://bot:${KEY}@127.0.0.1:${proxy.port}`, NODE_USE_ENV_PROXY: '1', NODE_EXTRA_CA_CERTS: proxy.caPath });
    const r = await runProcess(process.execPath, ['-e', script, `wss://api.example.test:${port}/api/websocket-node`], env, undefined, 15_000);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'auth_ok', you_sent: auth(MASKED) });
    expect(findLeak(r.stdout + r.stderr, CANARY)).toBeUndefined();
  });
});

describe('bounds', () => {
  it('a text message over proxy.max_body_swap goes on unswapped, and the audit says so', async () => {
    const client = await openWs('/api/websocket-large', false);
    const big = JSON.stringify({ type: 'auth', access_token: HA, pad: 'x'.repeat(70 * 1024) });
    client.ws.send(big);
    expect((await answer(client, 1))['type']).toBe('auth_invalid');
    expect(received).toContain(big);
    client.ws.terminate();
    expect(await auditLine('/api/websocket-large')).toMatchObject({ body_swap: 'too_large' });
  });

  it('a compression bomb is inflated only to the bound, then the connection is closed', async () => {
    const client = await openWs('/api/websocket-bomb', {});
    const before = process.memoryUsage().rss;
    // 32 MiB of one letter compresses to about 32 KiB: under the bound compressed, far over it inflated.
    client.ws.send(`{"type":"auth","access_token":"${HA}","pad":"${'a'.repeat(32 * 1024 * 1024)}"}`);
    const code = await Promise.race([client.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    expect(code).toBe(1006); // keyway ended the connection: nothing was passed on
    expect(received.some((m) => m.includes('"pad":"aaaa'))).toBe(false);
    expect(await auditLine('/api/websocket-bomb')).toMatchObject({ body_swap: 'too_large' });
    // Bounded: nowhere near the 32 MiB the message inflates to was held (the client's own copy aside).
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('gives back the memory of a message cut off by the connection closing', async () => {
    for (let i = 0; i < 2; i++) {
      const path = `/api/websocket-cut-${i}`;
      const client = await openWs(path, false);
      client.ws.send(`{"pad":"${'y'.repeat(65_000)}`, { fin: false });
      await new Promise((r) => setTimeout(r, 100));
      client.ws.terminate();
      await auditLine(path);
    }
    const client = await openWs('/api/websocket-after-cuts', false);
    // Larger than what would be left of the budget (131072 - 2 x 65008 bytes), had it leaked.
    client.ws.send(JSON.stringify({ type: 'auth', access_token: HA, pad: 'z'.repeat(2000) }));
    expect((await answer(client, 1))['type']).toBe('auth_ok');
    client.ws.terminate();
  });

  it('the canary is in no log or audit line', () => {
    expect(canaryLeaks(proxy)).toEqual([]);
  });
});
