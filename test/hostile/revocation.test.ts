import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Revocation reaches open connections (issue 46, high). A connection signs in once, at CONNECT;
// before this, it kept the agent, key, grants and rules it had then, and a keep-alive tunnel went on
// injecting the credential after `agents rm`, `agents rotate-key` or a narrowing reload. Now each
// request is judged against the agent as it stands, and a connection whose sign-in no longer holds
// is closed within a second or so, idle or not. Each case holds a tunnel open, shows a request on
// it injected, revokes, and shows that within 2.5 s nothing more is injected on that tunnel.

const TOKEN = `${CANARY}-revocation-token`;
const WITHIN_MS = 2_500;

describe('revoking an agent reaches its open connections', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { GH: TOKEN, CFG_KEY: 'cfg-key-1', LEASED_KEY: 'leased-key-1' },
      config: {
        grants: {
          github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GH' },
          other: { type: 'bearer', domains: ['other.example.test'], secret: 'env:GH' },
        },
        agents: {
          cfg: { key: 'env:CFG_KEY', grants: ['github', 'other'] },
          leased: { key: 'env:LEASED_KEY', grants: ['github'], lease_ttl: '1h' },
        },
      },
    });
  });
  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  const authority = () => `api.example.test:${upstream.port}`;
  const basic = (id: string, key: string) => `Proxy-Authorization: Basic ${Buffer.from(`${id}:${key}`).toString('base64')}\r\n`;

  /** A keep-alive HTTP/1.1 connection inside a CONNECT tunnel, as `id:key`. */
  async function tunnel(id: string, key: string): Promise<TLSSocket> {
    const socket = await openTunnel(proxy.port, authority(), basic(id, key));
    return startTls(socket, 'api.example.test', readFileSync(proxy.caPath, 'utf8'));
  }

  /** One request on the open connection: its status and whether the upstream saw the token; undefined once closed. */
  function get(tls: TLSSocket, path = '/echo'): Promise<{ status: number; injected: boolean } | undefined> {
    if (tls.destroyed || !tls.writable) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let text = '';
      const done = (value: { status: number; injected: boolean } | undefined) => {
        tls.off('data', onData);
        tls.off('close', onClose);
        resolve(value);
      };
      const onData = (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const end = text.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        outputs.push(text);
        const response = parseResponse(text);
        done({ status: response.status, injected: response.body.includes('Bearer') });
      };
      const onClose = () => done(undefined);
      tls.on('data', onData);
      tls.once('close', onClose);
      tls.write(`GET ${path} HTTP/1.1\r\nHost: ${authority()}\r\n\r\n`);
    });
  }

  /** Within WITHIN_MS of a revocation, the connection is closed or its requests are refused (never injected again). */
  async function expectCutOff(tls: TLSSocket, what: string): Promise<void> {
    const deadline = Date.now() + WITHIN_MS;
    let last: { status: number; injected: boolean } | undefined = { status: 0, injected: true };
    while (Date.now() < deadline) {
      last = await get(tls);
      if (last === undefined || !last.injected) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last === undefined || (last.status === 407 && !last.injected), `${what}: still injected ${WITHIN_MS} ms after`).toBe(true);
    // The connection is closed for good within the same bound.
    await waitFor(() => (tls.destroyed || tls.readableEnded ? true : undefined), `${what}: the connection closed`, WITHIN_MS);
  }

  async function addAgent(id: string): Promise<string> {
    const added = await proxy.cli(['agents', 'add', id, '--grants', 'github']);
    expect(added.code, added.stderr).toBe(0);
    const key = /http:\/\/[^:]+:([^@]+)@/.exec(added.stdout)?.[1];
    expect(key).toBeDefined();
    return decodeURIComponent(key!);
  }

  async function signedIn(id: string, key: string): Promise<TLSSocket> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        const tls = await tunnel(id, key);
        const first = await get(tls);
        if (first?.status === 200 && first.injected) return tls;
        tls.destroy();
      } catch {
        // not in the proxy's tables yet
      }
      if (Date.now() > deadline) throw new Error(`agent ${id} never got a working tunnel`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('keyway agents rm: the open tunnel is cut off within 2.5 s, and audited', async () => {
    const key = await addAgent('gone');
    const tls = await signedIn('gone', key);
    const rm = await proxy.cli(['agents', 'rm', 'gone']);
    expect(rm.code, rm.stderr).toBe(0);
    await expectCutOff(tls, 'agents rm');
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['agent'] === 'gone' && l['code'] === 'proxy_auth_required' && String(l['message']).includes('was removed')),
      'the audit line of the cut-off',
    );
    expect(line['decision']).toBe('deny');
  });

  it('keyway agents rotate-key: the tunnel signed in with the old key is cut off; the new key works', async () => {
    const key = await addAgent('rotated');
    const tls = await signedIn('rotated', key);
    const rotated = await proxy.cli(['agents', 'rotate-key', 'rotated']);
    expect(rotated.code, rotated.stderr).toBe(0);
    await expectCutOff(tls, 'rotate-key');
    const fresh = decodeURIComponent(/http:\/\/[^:]+:([^@]+)@/.exec(rotated.stdout)![1]!);
    const again = await signedIn('rotated', fresh);
    again.destroy();
  });

  it('a reload that takes a grant away (HTTP/1.1 and HTTP/2): the open connections stop injecting it', async () => {
    const tls = await signedIn('cfg', 'cfg-key-1');
    const h2: ClientHttp2Session = await h2ThroughProxy(proxy.port, authority(), proxy.caPath, 'cfg:cfg-key-1');
    try {
      const before = await h2Request(h2, { ':method': 'GET', ':path': '/echo' });
      expect(before.headers[':status']).toBe(200);
      expect(before.body.toString()).toContain('Bearer');
      const file = join(proxy.home, 'config', 'keyway.yaml');
      const config = parse(readFileSync(file, 'utf8')) as { agents: { cfg: { grants: string[] } } };
      config.agents.cfg.grants = ['other'];
      writeFileSync(file, stringify(config));
      const outcome = await proxy.running.reload();
      expect(outcome.reloaded).toBe(true);
      // The grant is gone for this agent: its requests on the open connection are not injected.
      const next = await get(tls);
      expect(next === undefined || !next.injected, 'HTTP/1.1 still injected after the reload').toBe(true);
      const streamed = await h2Request(h2, { ':method': 'GET', ':path': '/echo' }).catch(() => undefined);
      if (streamed !== undefined) {
        outputs.push(streamed.body.toString());
        expect(streamed.body.toString(), 'HTTP/2 still injected after the reload').not.toContain('Bearer');
      }
    } finally {
      tls.destroy();
      h2.close();
    }
  });

  it('a reload that removes the agent: its HTTP/2 session is closed', async () => {
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(file, 'utf8')) as { agents: Record<string, { grants: string[] }> };
    config.agents['cfg']!.grants = ['github', 'other'];
    writeFileSync(file, stringify(config));
    expect((await proxy.running.reload()).reloaded).toBe(true);
    const h2 = await h2ThroughProxy(proxy.port, authority(), proxy.caPath, 'cfg:cfg-key-1');
    const first = await h2Request(h2, { ':method': 'GET', ':path': '/echo' });
    expect(first.body.toString()).toContain('Bearer');
    delete config.agents['cfg'];
    config.agents['keeper'] = { grants: ['github'], key: 'env:CFG_KEY' } as never;
    writeFileSync(file, stringify(config));
    expect((await proxy.running.reload()).reloaded).toBe(true);
    await waitFor(() => (h2.closed || h2.destroyed ? true : undefined), 'the HTTP/2 session closed', WITHIN_MS);
  });

  it('keyway agents revoke-lease: the next request on the open tunnel is refused', async () => {
    const tls = await signedIn('leased', 'leased-key-1');
    try {
      const revoked = await proxy.cli(['agents', 'revoke-lease', 'leased', 'github']);
      expect(revoked.code, revoked.stderr).toBe(0);
      const deadline = Date.now() + WITHIN_MS;
      let last = await get(tls);
      while (last?.injected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        last = await get(tls);
      }
      expect(last === undefined || !last.injected, 'still injected after revoke-lease').toBe(true);
    } finally {
      tls.destroy();
    }
  });
});

describe('no connection outlives proxy.timeouts.max_connection_age', () => {
  it('a busy blind tunnel is closed at its age, and audited', async () => {
    const upstream = await startUpstream();
    const proxy = await startProxy({ config: { proxy: { timeouts: { max_connection_age: '1s' } } } });
    try {
      const socket = await openTunnel(proxy.port, `tunnel.example.test:${upstream.port}`);
      const tls = await startTls(socket, 'tunnel.example.test', TLS_FIXTURES.ca);
      // Kept busy: the idle timeout never fires, only the age does.
      const busy = setInterval(() => tls.writable && tls.write(`GET /echo HTTP/1.1\r\nHost: tunnel.example.test\r\n\r\n`), 100);
      try {
        await waitFor(() => (tls.destroyed || tls.readableEnded ? true : undefined), 'the aged tunnel closed', 1_000 + WITHIN_MS);
      } finally {
        clearInterval(busy);
      }
      const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'request_timeout'), 'the audit line of the close');
      expect(String(line['message'])).toContain('max_connection_age');
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
