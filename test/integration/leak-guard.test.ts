import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

// The leak guard: an upstream that echoes the injected secret back (a debug endpoint echoing the
// Authorization header, an error quoting it) must not hand the agent the secret it never had.
// keyway replaces it with `[redacted by keyway]` in textual, unencoded response bodies, as they
// stream, and counts the replacements in the audit line (`leak_redacted`).
//
// Every body is scanned, whatever its type: a non-textual one gets a same-length run of '*' instead
// of the marker, so its Content-Length holds. A compressed body is decoded, scanned and sent
// decoded. More cases (encodings, encoded forms of the secret, WebSocket) live in the files
// test/integration/leak-guard-*.test.ts.

const REDACTED = '[redacted by keyway]';
const AUTH = `Bearer ${CANARY}`;
const BASIC_USER = 'leak-user';
const BASIC_PASSWORD = `${CANARY}-basic-pw`;
const SSE_TIMEOUT_MS = 5_000;

/** What the upstream echoes in its JSON body: the Authorization header it received, twice. */
const jsonEcho = (auth: string) => ({ received: auth, message: `you sent ${auth}`, ok: true });

const sseEvents = (auth: string) => ['data: event-0', `event: debug\ndata: event-1 you sent ${auth}`, 'data: event-2', 'data: event-3'];

/**
 * Lock-step for the server-sent events test: the upstream writes the next event only once the
 * client has received the previous one. A proxy that held the stream back (buffering the body to
 * scan it whole) stalls this, and the upstream then gives up and records where.
 */
class Steps {
  #received = 0;
  #waiters = new Set<{ n: number; resolve: (ok: boolean) => void }>();

  received(n: number): void {
    this.#received = n;
    for (const w of this.#waiters) {
      if (w.n <= n) {
        this.#waiters.delete(w);
        w.resolve(true);
      }
    }
  }

  wait(n: number, timeoutMs: number): Promise<boolean> {
    if (this.#received >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        n,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}

describe('the leak guard', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const steps = new Steps();
  /** Set by the SSE route when the client did not get an event before the next was due. */
  let sseStalledAt: number | undefined;
  const binaryBody = (auth: string) => Buffer.concat([Buffer.from([0x00, 0x01, 0xfe, 0xff]), Buffer.from(auth), Buffer.from([0x00, 0x80])]);
  const gzipBody = (auth: string) => gzipSync(JSON.stringify(jsonEcho(auth)));

  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const auth = req.headers.authorization ?? '';
    switch (new URL(req.url ?? '/', 'https://upstream').pathname) {
      case '/leak/json': {
        const text = JSON.stringify(jsonEcho(auth));
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return true;
      }
      case '/leak/header': {
        // An echo in response headers, as a debug endpoint or a WWW-Authenticate quoting the token might.
        res.writeHead(401, { 'x-echo-auth': auth, 'www-authenticate': `Bearer error="invalid_token", token="${auth.slice(7)}"`, 'content-length': '0' }).end();
        return true;
      }
      case '/leak/clean': {
        const text = JSON.stringify({ ok: true, note: 'nothing secret here' });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return true;
      }
      case '/leak/split': {
        // Chunked (no content-length), the secret cut in the middle between two writes 50 ms apart.
        const line = `token: ${auth}\n`;
        const at = line.indexOf(CANARY);
        const cut = at === -1 ? line.length : at + Math.floor(CANARY.length / 2);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.write(line.slice(0, cut));
        const timer = setTimeout(() => res.end(line.slice(cut)), 50);
        res.on('close', () => clearTimeout(timer));
        return true;
      }
      case '/leak/sse': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        const events = sseEvents(auth);
        void (async () => {
          for (let i = 0; i < events.length; i++) {
            res.write(`${events[i]}\n\n`);
            if (!(await steps.wait(i + 1, SSE_TIMEOUT_MS))) {
              sseStalledAt = i;
              break;
            }
          }
          res.end();
        })();
        return true;
      }
      case '/leak/binary': {
        const body = binaryBody(auth);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
        return true;
      }
      case '/leak/gzip': {
        const body = gzipBody(auth);
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) }).end(body);
        return true;
      }
      case '/leak/basic': {
        // Echoes the Basic header and what it decodes to (user:password).
        const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
        const text = JSON.stringify({ received: auth, decoded });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return true;
      }
      default:
        return false;
    }
  };

  beforeAll(async () => {
    upstream = await startUpstream({ handler });
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'basic', type: 'basic', domains: ['other.example.test'], secret: { username: BASIC_USER, password: BASIC_PASSWORD } },
      ],
    });
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await dispatcher?.close().catch(() => undefined);
    await proxy?.stop();
    await upstream?.close();
  });

  const url = (path: string, host = 'api.example.test') => `https://${host}:${upstream.port}${path}`;

  /** One request through keyway; returns what the agent sees and what the upstream received. */
  async function fetchThrough(path: string, host?: string) {
    const before = upstream.seen.length;
    const res = await request(url(path, host), { dispatcher, signal: AbortSignal.timeout(slack(15_000)) });
    const body = Buffer.from(await res.body.arrayBuffer());
    const seen = upstream.seen.slice(before);
    expect(seen, `the upstream should see exactly one request for ${path}`).toHaveLength(1);
    return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8'), seen: seen[0]! };
  }

  const auditLine = (path: string) => waitFor(() => proxy.auditLines().find((l) => l['path'] === path), `the audit line for ${path}`);

  it('redacts the secret from a JSON body with a content-length, and counts each redaction', async () => {
    const r = await fetchThrough('/leak/json');
    expect(r.status).toBe(200);
    // The upstream did receive the real secret: injection is unchanged.
    expect(r.seen.headers.authorization).toBe(AUTH);
    // The agent gets the same JSON with the secret replaced (so a different length: no stale content-length).
    expect(JSON.parse(r.text)).toEqual(jsonEcho(`Bearer ${REDACTED}`));
    expect(r.headers['content-length'] === undefined || Number(r.headers['content-length']) === r.body.length).toBe(true);
    expect(r.text).not.toContain(CANARY);
    expect(JSON.stringify(r.headers)).not.toContain(CANARY);
    const line = await auditLine('/leak/json');
    expect(line['decision']).toBe('inject');
    expect(line['grant']).toBe('api');
    expect(line['status']).toBe(200);
    expect(line['leak_redacted']).toBe(2);
  });

  it('redacts the secret from response headers too', async () => {
    const r = await fetchThrough('/leak/header');
    expect(r.status).toBe(401);
    expect(r.seen.headers.authorization).toBe(AUTH);
    expect(r.headers['x-echo-auth']).toBe(`Bearer ${REDACTED}`);
    expect(String(r.headers['www-authenticate'])).toContain(`token="${REDACTED}"`);
    expect(JSON.stringify(r.headers)).not.toContain(CANARY);
    expect((await auditLine('/leak/header'))['leak_redacted']).toBe(2);
  });

  it('leaves a textual body without the secret untouched, with no leak_redacted in the audit line', async () => {
    const r = await fetchThrough('/leak/clean');
    expect(r.status).toBe(200);
    expect(r.seen.headers.authorization).toBe(AUTH);
    expect(JSON.parse(r.text)).toEqual({ ok: true, note: 'nothing secret here' });
    const line = await auditLine('/leak/clean');
    expect(line['decision']).toBe('inject');
    expect(line).not.toHaveProperty('leak_redacted');
  });

  it('redacts a secret split across two chunks of a chunked text body, leaking no part of it', async () => {
    const r = await fetchThrough('/leak/split');
    expect(r.status).toBe(200);
    expect(r.seen.headers.authorization).toBe(AUTH);
    // Exactly the line, with the whole secret replaced once: not half of it sent before the second chunk came.
    expect(r.text).toBe(`token: Bearer ${REDACTED}\n`);
    expect(r.text).not.toContain(CANARY.slice(0, 6));
    const line = await auditLine('/leak/split');
    expect(line['leak_redacted']).toBe(1);
  });

  it('redacts the secret in one server-sent event while the events still arrive one by one', async () => {
    sseStalledAt = undefined;
    const before = upstream.seen.length;
    const res = await request(url('/leak/sse'), { dispatcher, signal: AbortSignal.timeout(4 * SSE_TIMEOUT_MS) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    res.body.setEncoding('utf8');
    const events: string[] = [];
    let buffer = '';
    let everything = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      buffer += chunk;
      everything += chunk;
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        events.push(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        // Tell the upstream this event arrived: only then does it send the next.
        steps.received(events.length);
      }
    }
    // The upstream never had to give up waiting: each event reached the client before the next was sent.
    expect(sseStalledAt).toBeUndefined();
    expect(events).toEqual(sseEvents(`Bearer ${REDACTED}`));
    expect(buffer).toBe('');
    expect(everything).not.toContain(CANARY);
    const seen = upstream.seen.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.authorization).toBe(AUTH);
    const line = await auditLine('/leak/sse');
    expect(line['leak_redacted']).toBe(1);
  });

  it('redacts both forms of a basic grant: the base64 header value and the password', async () => {
    const r = await fetchThrough('/leak/basic', 'other.example.test');
    expect(r.status).toBe(200);
    const header = `Basic ${Buffer.from(`${BASIC_USER}:${BASIC_PASSWORD}`).toString('base64')}`;
    expect(r.seen.headers.authorization).toBe(header);
    expect(JSON.parse(r.text)).toEqual({ received: `Basic ${REDACTED}`, decoded: `${BASIC_USER}:${REDACTED}` });
    expect(r.text).not.toContain(CANARY);
    expect(r.text).not.toContain(header.slice(6));
    const line = await auditLine('/leak/basic');
    expect(line['grant']).toBe('basic');
    expect(line['leak_redacted']).toBe(2);
  });

  it('masks the secret in a binary body with as many bytes, keeping its Content-Length', async () => {
    const r = await fetchThrough('/leak/binary');
    expect(r.status).toBe(200);
    expect(r.seen.headers.authorization).toBe(AUTH);
    const expected = binaryBody(`Bearer ${'*'.repeat(CANARY.length)}`);
    expect(r.body.equals(expected)).toBe(true);
    expect(r.headers['content-length']).toBe(String(expected.length));
    const line = await auditLine('/leak/binary');
    expect(line['decision']).toBe('inject');
    expect(line['leak_redacted']).toBe(1);
  });

  it('decodes a gzip-encoded JSON body, redacts it, and sends it decoded', async () => {
    const r = await fetchThrough('/leak/gzip');
    expect(r.status).toBe(200);
    expect(r.seen.headers.authorization).toBe(AUTH);
    // Sent as identity: undici's request() does not decompress, so these are the bytes on the wire.
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(r.text)).toEqual(jsonEcho(`Bearer ${REDACTED}`));
    const line = await auditLine('/leak/gzip');
    expect(line['leak_redacted']).toBe(2);
  });

  it('never writes the secret to the app log or the audit file', async () => {
    expect(proxy.auditLines().length).toBeGreaterThanOrEqual(7);
    const texts = [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')];
    for (const text of texts) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(REDACTED);
    }
  });
});
