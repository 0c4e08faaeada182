import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { CANARY } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Egress safety end to end, on loopback only: every destination here is 127.0.0.x.

async function rawConnect(proxyPort: number, target: string): Promise<{ status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, 5_000);
    socket.on('data', (c: Buffer) => {
      data += c.toString();
      if (data.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        const status = Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1]);
        resolve({ status, code: /x-keyway-error: (\S+)/i.exec(data)?.[1], body: data.split('\r\n\r\n')[1] ?? '' });
      }
    });
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

describe('egress safety', () => {
  let upstream: TestUpstream;
  let strict: TestProxy;
  let narrow: TestProxy;
  let open: TestProxy;

  beforeAll(async () => {
    upstream = await startUpstream();
    const grants = [{ id: 'api', type: 'bearer' as const, domains: ['api.example.test'], secret: CANARY }];
    // The keyway default: no loopback at all.
    strict = await startProxy({ grants, config: { proxy: { allow_networks: [] } } });
    // Only 127.0.0.1; the name other.example.test maps to 127.0.0.2.
    narrow = await startProxy({
      grants,
      config: {
        proxy: {
          allow_networks: ['127.0.0.1/32'],
          hosts: { 'api.example.test': '127.0.0.1', 'other.example.test': '127.0.0.2', 'tunnel.example.test': '127.0.0.1' },
        },
      },
    });
    open = await startProxy({ grants });
  });
  afterAll(async () => {
    await Promise.all([strict?.stop(), narrow?.stop(), open?.stop()]);
    await upstream?.close();
  });

  it('refuses a name mapped to loopback by default, for tunnels and intercepted hosts alike, saying why', async () => {
    const tunnelled = await rawConnect(strict.port, `tunnel.example.test:${upstream.port}`);
    expect(tunnelled.status).toBe(403);
    expect(tunnelled.code).toBe('host_not_allowed');
    expect(JSON.parse(tunnelled.body).error.message).toContain('loopback');

    const client = new ProxyAgent({ uri: strict.url, requestTls: { ca: readFileSync(strict.caPath, 'utf8') } });
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: client });
    const body = JSON.parse(await res.body.text());
    expect(res.statusCode).toBe(403);
    expect(body.error.code).toBe('host_not_allowed');
    expect(body.error.message).toContain('127.0.0.1 is a loopback address');
    await client.close();
    const line = await waitFor(() => strict.auditLines().find((l) => l['host'] === 'api.example.test'), 'the audit line');
    expect(line).toMatchObject({ decision: 'deny', code: 'host_not_allowed', grant: 'api' });
  });

  it('lets it through with allow_networks, and refuses 127.0.0.2 when only 127.0.0.1/32 is allowed', async () => {
    const seenBefore = upstream.seen.length;
    const allowed = await rawConnect(narrow.port, `tunnel.example.test:${upstream.port}`);
    expect(allowed.status).toBe(200);
    const refused = await rawConnect(narrow.port, `other.example.test:${upstream.port}`);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error.message).toContain('127.0.0.2');
    const literal = await rawConnect(narrow.port, `127.0.0.2:${upstream.port}`);
    expect(literal.status).toBe(403);
    expect(upstream.seen.length).toBe(seenBefore);
  });

  it('connects only to the address it checked when a name resolves differently the second time', async () => {
    // rebind.example.test is not in proxy.hosts: the scripted resolver answers 127.0.0.1, then 127.0.0.2.
    const answers = ['127.0.0.1', '127.0.0.2'];
    const asked: string[] = [];
    const rebinding = await startProxy({
      config: { proxy: { allow_networks: ['127.0.0.1/32'] } },
      dns: async (host) => {
        asked.push(host);
        return { address: answers[Math.min(asked.length - 1, 1)]!, family: 4 };
      },
    });
    try {
      const seenBefore = upstream.seen.length;
      const first = await rawConnect(rebinding.port, `rebind.example.test:${upstream.port}`);
      expect(first.status).toBe(200);
      const second = await rawConnect(rebinding.port, `rebind.example.test:${upstream.port}`);
      expect(second.status).toBe(403);
      expect(JSON.parse(second.body).error.message).toContain('127.0.0.2');
      expect(asked).toEqual(['rebind.example.test', 'rebind.example.test']); // one lookup per connection
      expect(upstream.seen.length).toBe(seenBefore); // a blind tunnel that was never used
    } finally {
      await rebinding.stop();
    }
  });

  it("refuses a CONNECT to keyway's own port", async () => {
    const self = await rawConnect(open.port, `127.0.0.1:${open.port}`);
    expect(self.status).toBe(403);
    expect(JSON.parse(self.body).error.message).toContain("keyway's own listener");
    const byName = await rawConnect(open.port, `api.example.test:${open.port}`);
    expect(byName.status).toBe(403);
  });
});
