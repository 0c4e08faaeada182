import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { exchange, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// The WebSocket upgrade path and its neighbours, written byte by byte on raw sockets (the fuzz
// suite's findings, each checked against the code): a request line with no version (HTTP/0.9 to
// llhttp), a handshake pipelined behind unfinished answers, an Expect other than 100-continue,
// and an absolute-form target naming another host than the CONNECT target.

const KEY = Buffer.alloc(16, 7).toString('base64');
const wsHeaders = `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`;

/** Writes `text`, collects until `done(bytes so far)` or the peer closes; bounded in time. */
function collect(stream: Duplex, text: string, done: (raw: string) => boolean, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const raw = () => Buffer.concat(chunks).toString('latin1');
    const finish = () => {
      clearTimeout(timer);
      stream.destroy();
      resolve(raw());
    };
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`nothing conclusive within ${timeoutMs} ms; got: ${raw().slice(0, 300)}`));
    }, timeoutMs);
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      if (done(raw())) finish();
    });
    stream.once('close', finish);
    stream.once('error', finish);
    stream.write(text);
  });
}

describe('the upgrade path and request framing inside tunnels', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let ca: string;
  let authority: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    ca = readFileSync(proxy.caPath, 'utf8');
    authority = `api.example.test:${upstream.port}`;
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function tunnel(): Promise<Duplex> {
    const tls = await startTls(await openTunnel(proxy.port, authority), 'api.example.test', ca);
    tls.on('error', () => undefined);
    return tls;
  }

  /** Runs `act`; resolves with the audit lines written meanwhile once there are `count` of them. */
  async function newAuditLines<T>(count: number, act: () => Promise<T>): Promise<{ result: T; lines: Array<Record<string, unknown>> }> {
    const before = proxy.auditLines().length;
    const result = await act();
    const lines = await waitFor(() => {
      const now = proxy.auditLines().slice(before);
      return now.length >= count ? now : undefined;
    }, `${count} new audit line(s)`);
    return { result, lines };
  }

  const upstreamSaw = (marker: string) => upstream.seen.filter((s) => s.url.includes(marker));

  describe('a request line without a version (HTTP/0.9 to llhttp)', () => {
    for (const [name, extra] of [
      ['a plain GET', ''],
      ['a WebSocket handshake', wsHeaders],
    ] as const) {
      it(`refuses ${name} with keyway's 400 and one audit line; nothing goes upstream`, async () => {
        const { result: raw, lines } = await newAuditLines(1, async () => exchange(await tunnel(), `GET /h09{I/1.1\r\nHost: ${authority}\r\n${extra}\r\n`));
        const r = parseResponse(raw);
        expect(raw.startsWith('HTTP/1.1 400 ')).toBe(true);
        expect(r.headers['x-keyway-error']).toBe('bad_request');
        expect(r.body).toContain('HTTP/0.9');
        expect(upstreamSaw('/h09')).toEqual([]);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({ code: 'bad_request', status: 400, host: 'api.example.test' });
      });
    }

    it('refuses one on the listener (absolute-form) the same way', async () => {
      const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
      const { result: raw, lines } = await newAuditLines(1, () =>
        exchange(socket, `GET http://plain.example.test:${upstream.port}/h09l{I/1.1\r\nHost: plain.example.test:${upstream.port}\r\n\r\n`),
      );
      expect(parseResponse(raw).headers['x-keyway-error']).toBe('bad_request');
      expect(upstreamSaw('/h09l')).toEqual([]);
      expect(lines[0]).toMatchObject({ code: 'bad_request', status: 400 });
    });

    it('still forwards HTTP/1.0 inside a tunnel (as HTTP/1.1, with the credential), audited', async () => {
      const { result: raw, lines } = await newAuditLines(1, async () => exchange(await tunnel(), `GET /h10 HTTP/1.0\r\nHost: ${authority}\r\n\r\n`));
      expect(parseResponse(raw).status).toBe(200);
      expect(upstreamSaw('/h10')[0]?.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(findLeak(raw, CANARY)).toBeUndefined();
      expect(lines[0]).toMatchObject({ path: '/h10', status: 200, decision: 'inject' });
    });
  });

  describe('a WebSocket handshake pipelined behind unfinished answers', () => {
    it('waits for the answer ahead: a refused handshake is answered after it, whole, and the connection closes', async () => {
      // The stream ahead takes ~400 ms; the upstream refuses the handshake (no WebSocket on that
      // path) at once. A third request behind the handshake is never read.
      const text =
        `GET /sse?n=4 HTTP/1.1\r\nHost: ${authority}\r\n\r\n` +
        `GET /pipe-nows HTTP/1.1\r\nHost: ${authority}\r\n${wsHeaders}\r\n` +
        `GET /pipe-third HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
      const { result: raw, lines } = await newAuditLines(2, async () => exchange(await tunnel(), text));
      const second = raw.indexOf('HTTP/1.1 400 ');
      expect(raw.startsWith('HTTP/1.1 200 ')).toBe(true);
      expect(second, raw).toBeGreaterThan(0);
      const first = raw.slice(0, second);
      for (let i = 0; i < 4; i++) expect(first).toContain(`data: event-${i}`);
      expect(first.endsWith('0\r\n\r\n'), first).toBe(true); // the chunked stream ended before the next head
      expect(raw.slice(second + 1)).not.toContain('HTTP/1.1 ');
      expect(upstreamSaw('/pipe-third')).toEqual([]);
      expect(lines.map((l) => [l['path'], l['status']])).toEqual([
        ['/sse', 200],
        ['/pipe-nows', 400],
      ]);
    });

    it('a request the parser refuses, pipelined behind an unfinished answer, is refused after it is sent', async () => {
      // Bytes after an HTTP/1.0 request (no keep-alive) are an error to llhttp; keyway's 400 used to
      // be written at once, ending the connection before the answer ahead was sent.
      const text = `GET /slow?ms=300&h10-ahead HTTP/1.0\r\nHost: ${authority}\r\n\r\nGET /ws?after-close HTTP/1.1\r\nHost: ${authority}\r\n${wsHeaders}\r\n`;
      const { result: raw, lines } = await newAuditLines(2, async () => exchange(await tunnel(), text));
      // The answer ahead arrives whole; it closes the connection (HTTP/1.0), so the 400 may never go out.
      expect(raw.startsWith('HTTP/1.1 200 '), raw).toBe(true);
      expect(parseResponse(raw).body.startsWith('slow'), raw).toBe(true);
      expect(raw).not.toContain('HTTP/1.1 101');
      expect(upstreamSaw('after-close')).toEqual([]);
      expect(lines.map((l) => [l['path'], l['status'], l['code']]).sort()).toEqual([
        [null, 400, 'bad_request'],
        ['/slow', 200, null],
      ]);
    });

    it('waits for the answer ahead before a 101, then the frames flow', async () => {
      const text = `GET /slow?ms=400 HTTP/1.1\r\nHost: ${authority}\r\n\r\nGET /ws HTTP/1.1\r\nHost: ${authority}\r\n${wsHeaders}\r\n`;
      const { result: raw, lines } = await newAuditLines(2, async () => collect(await tunnel(), text, (got) => got.includes('authorization')));
      const slow = raw.indexOf('HTTP/1.1 200 ');
      const switching = raw.indexOf('HTTP/1.1 101 ');
      expect(slow).toBe(0);
      expect(switching, raw).toBeGreaterThan(raw.indexOf('slow'));
      expect(raw.slice(switching)).toContain(`{"authorization":"Bearer ${'*'.repeat(CANARY.length)}"}`);
      expect(findLeak(raw, CANARY)).toBeUndefined();
      expect(lines.map((l) => [l['path'], l['status']]).sort()).toEqual([
        ['/slow', 200],
        ['/ws', 101],
      ]);
    });
  });

  it('audits a WebSocket handshake refused on the plain listener (ws:// is not proxied)', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
    const { result: raw, lines } = await newAuditLines(1, () =>
      exchange(socket, `GET http://plain.example.test:${upstream.port}/ws-plain HTTP/1.1\r\nHost: plain.example.test:${upstream.port}\r\n${wsHeaders}\r\n`),
    );
    expect(parseResponse(raw).headers['x-keyway-error']).toBe('bad_request');
    expect(upstreamSaw('/ws-plain')).toEqual([]);
    expect(lines[0]).toMatchObject({ method: 'GET', code: 'bad_request', status: 400 });
  });

  describe('Expect other than 100-continue', () => {
    it("is refused inside a tunnel with keyway's own error and one audit line", async () => {
      const { result: raw, lines } = await newAuditLines(1, async () =>
        exchange(await tunnel(), `POST /expect HTTP/1.1\r\nHost: ${authority}\r\nExpect: fancy\r\nContent-Length: 5\r\n\r\nhello`),
      );
      const r = parseResponse(raw);
      expect(r.status).toBe(400);
      expect(r.headers['x-keyway-error']).toBe('bad_request');
      expect(r.headers['connection']).toBe('close');
      expect(upstreamSaw('/expect')).toEqual([]);
      expect(lines[0]).toMatchObject({ method: 'POST', code: 'bad_request', status: 400, host: 'api.example.test' });
    });

    it('is refused on the listener the same way', async () => {
      const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
      const { result: raw, lines } = await newAuditLines(1, () =>
        exchange(
          socket,
          `GET http://plain.example.test:${upstream.port}/expect-l HTTP/1.1\r\nHost: plain.example.test:${upstream.port}\r\nExpect: fancy\r\n\r\n`,
        ),
      );
      const r = parseResponse(raw);
      expect(r.headers['x-keyway-error']).toBe('bad_request');
      expect(upstreamSaw('/expect-l')).toEqual([]);
      expect(lines[0]).toMatchObject({ method: 'GET', code: 'bad_request', status: 400 });
    });
  });

  describe('Expect: 100-continue pipelined behind an unfinished answer (fuzz finding)', () => {
    // Node's own 100 Continue went into the response's buffer behind the answer ahead, and the final
    // answer's head was then put in front of it: head, 100, body. The 100 now waits its turn.
    const text = (prefix: string, host: string, marker: string) =>
      `GET ${prefix}/slow?ms=300 HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
      `POST ${prefix}/${marker} HTTP/1.1\r\nHost: ${host}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`;
    const inOrder = (raw: string, marker: string) => {
      expect(raw.startsWith('HTTP/1.1 200 '), raw).toBe(true);
      // After the answer ahead: a 100 Continue, or none (RFC 9110 10.1.1: the body had arrived
      // already), then the final answer whole, with nothing in the middle of it.
      let rest = raw.slice(raw.indexOf('0\r\n\r\n', raw.indexOf('slow')) + '0\r\n\r\n'.length);
      if (rest.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) rest = rest.slice('HTTP/1.1 100 Continue\r\n\r\n'.length);
      const answer = parseResponse(rest);
      expect(answer.status, JSON.stringify(raw)).toBe(200);
      expect(answer.body, raw).not.toContain('HTTP/1.1 100');
      expect(JSON.parse(answer.body)).toMatchObject({ method: 'POST', path: `/${marker}`, body: 'hello' });
    };

    it('inside a tunnel: the answer ahead, then the 100 (or none), then the final answer whole', async () => {
      const { result: raw } = await newAuditLines(2, async () =>
        collect(await tunnel(), text('', authority, 'expect-in-turn'), (got) => got.includes('"body":"hello"}')),
      );
      inOrder(raw, 'expect-in-turn');
    });

    it('on the listener (absolute form, blind) the same', async () => {
      const plain = await startUpstream({ tls: 'plain' });
      try {
        const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
        const host = `plain.example.test:${plain.port}`;
        const { result: raw } = await newAuditLines(2, () =>
          collect(socket, text(`http://${host}`, host, 'expect-in-turn-l'), (got) => got.includes('"body":"hello"}')),
        );
        inOrder(raw, 'expect-in-turn-l');
      } finally {
        await plain.close();
      }
    });
  });

  describe('an upgrade other than WebSocket with a chunked body (fuzz finding)', () => {
    it('is refused with 400 and one audit line; nothing goes upstream (it used to hang until body_stall)', async () => {
      const text =
        `POST /h2c-chunked HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n`;
      const { result: raw, lines } = await newAuditLines(1, async () => exchange(await tunnel(), text));
      const r = parseResponse(raw);
      expect(r.status, raw).toBe(400);
      expect(r.headers['x-keyway-error']).toBe('bad_request');
      expect(upstreamSaw('/h2c-chunked')).toEqual([]);
      expect(lines[0]).toMatchObject({ method: 'POST', code: 'bad_request', status: 400, host: 'api.example.test' });
    });

    it('still serves an h2c upgrade request without a body as plain HTTP/1.1, with the credential', async () => {
      const text = `GET /h2c-get HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`;
      const { result: raw } = await newAuditLines(1, async () => collect(await tunnel(), text, (got) => got.includes('}')));
      const r = parseResponse(raw);
      expect(r.status, raw).toBe(200);
      expect(upstreamSaw('/h2c-get')[0]?.headers['authorization']).toBe(`Bearer ${CANARY}`);
      expect(upstreamSaw('/h2c-get')[0]?.headers['upgrade']).toBeUndefined();
    });
  });

  describe('absolute-form targets inside a tunnel', () => {
    it('refuses one naming another authority than the CONNECT target (host_mismatch); nothing goes upstream', async () => {
      for (const [target, extra] of [
        [`https://other.example.test:${upstream.port}/absother`, ''],
        [`https://api.example.test/absother-port`, ''], // port 443, not the CONNECT target's
        [`https://other.example.test:${upstream.port}/absother-ws`, wsHeaders],
      ] as const) {
        const { result: raw, lines } = await newAuditLines(1, async () =>
          exchange(await tunnel(), `GET ${target} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n${extra}\r\n`),
        );
        expect(parseResponse(raw).headers['x-keyway-error'], target).toBe('host_mismatch');
        expect(lines[0]).toMatchObject({ code: 'host_mismatch', status: 400 });
      }
      expect(upstreamSaw('/absother')).toEqual([]);
    });

    it('forwards one naming the CONNECT target, as its path', async () => {
      const { result: raw, lines } = await newAuditLines(1, async () =>
        exchange(await tunnel(), `GET https://${authority.toUpperCase()}/abs-same?q=1 HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`),
      );
      expect(parseResponse(raw).status).toBe(200);
      expect(upstreamSaw('/abs-same').map((s) => s.url)).toEqual(['/abs-same?q=1']);
      expect(lines[0]).toMatchObject({ path: '/abs-same', status: 200 });
    });
  });
});
