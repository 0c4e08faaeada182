import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { curl } from '../helpers/clients.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { exchange, openConnect, parseResponse } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { spyOnConnects } from '../hostile/egress-connect-spy.ts';
import { waitFor } from '../helpers/wait.ts';

// Issue 8, defect 3: keyway's own ports and the egress policy, reached through IPv6 spellings of
// an IPv4 address. Loopback only: every address here is 127.0.0.1 or ::1 in some form.

const spellings = (v4Hex: string) => [
  `::ffff:${v4Hex}`,
  `0000:0000:0000:0000:0000:ffff:${v4Hex.replace(/^(\w+):(\w+)$/, (_, a: string, b: string) => `${a.padStart(4, '0')}:${b.padStart(4, '0')}`)}`,
  `0:0:0:0:0:ffff:${v4Hex}`,
  '::ffff:127.0.0.1',
  '::FFFF:127.0.0.1',
];

describe("keyway's own ports in IPv6 forms (allow_networks: 127.0.0.0/8)", () => {
  let proxy: TestProxy;
  let adminPort: number;
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await startUpstream({ tls: 'plain' });
    proxy = await startProxy(); // the test default allows 127.0.0.0/8
    adminPort = proxy.running.adminAddress!.port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it.each(spellings('7f00:1'))('refuses CONNECT [%s] to the admin port and to the proxy port, audited', async (address) => {
    for (const port of [adminPort, proxy.port]) {
      const { socket, status, head } = await openConnect(proxy.port, `[${address}]:${port}`);
      socket.destroy();
      expect(status, `[${address}]:${port}`).toBe(403);
      expect(head.toLowerCase()).toContain('x-keyway-error: host_not_allowed');
    }
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['method'] === 'CONNECT' && l['host'] === '::ffff:7f00:1' && l['port'] === adminPort),
      'the audit line',
    );
    expect(line).toMatchObject({ decision: 'deny', code: 'host_not_allowed' });
  });

  it('refuses absolute-form http://[::ffff:127.0.0.1]:<port>/ to the admin port and to itself (raw socket)', async () => {
    for (const port of [adminPort, proxy.port]) {
      const socket = connect(proxy.port, '127.0.0.1');
      const raw = await exchange(
        socket,
        `GET http://[::ffff:127.0.0.1]:${port}/healthz HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:${port}\r\nConnection: close\r\n\r\n`,
      );
      const res = parseResponse(raw);
      expect(res.status, `port ${port}`).toBe(403);
      expect(res.headers['x-keyway-error']).toBe('host_not_allowed');
      expect(JSON.parse(res.body).error.message).toContain("keyway's own listener");
    }
    const lines = await waitFor(() => {
      const refused = proxy.auditLines().filter((l) => l['method'] === 'GET' && l['code'] === 'host_not_allowed');
      return refused.length >= 2 ? refused : undefined;
    }, 'two audit lines');
    // The refusal names the target it refused (it used to say host '' and port 0).
    expect(lines.map((l) => [l['host'], l['port']]).sort()).toEqual([adminPort, proxy.port].sort().map((port) => ['::ffff:7f00:1', port]));
  });

  it('refuses the fully expanded form through curl too', async () => {
    const url = `http://[0000:0000:0000:0000:0000:ffff:7f00:0001]:${adminPort}/healthz`;
    const result = await curl(['-g', '-x', proxy.url, '-o', '/dev/null', '-w', '%{http_code}', url], cleanEnv());
    expect(result.stdout).toBe('403');
  });

  it('still lets ::ffff:127.0.0.1 reach an upstream that 127.0.0.0/8 allows (the same address)', async () => {
    const socket = connect(proxy.port, '127.0.0.1');
    const raw = await exchange(
      socket,
      `GET http://[::ffff:127.0.0.1]:${upstream.port}/echo HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:${upstream.port}\r\nConnection: close\r\n\r\n`,
    );
    expect(parseResponse(raw).status).toBe(200);
  });

  it.each(['::127.0.0.1', '::7f00:1', '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', '64:ff9b:1::7f00:1', 'fec0::1'])(
    'refuses [%s] although 127.0.0.0/8 is allowed (a form of its own, refused by default)',
    async (address) => {
      const seen = upstream.seen.length;
      const { socket, status, head } = await openConnect(proxy.port, `[${address}]:${upstream.port}`);
      socket.destroy();
      expect(status).toBe(403);
      expect(head.toLowerCase()).toContain('x-keyway-error: host_not_allowed');
      expect(upstream.seen.length).toBe(seen);
    },
  );
});

describe("keyway's own ports behind a name that rebinds", () => {
  it('refuses a DNS name on an own port even when its first answer is not local (the connection would look it up again)', async () => {
    // First answer 10.0.0.1 (allowed here, not this host), then 127.0.0.1: before the fix the
    // CONNECT checked the first answer and the tunnel dialled the second, reaching the admin API.
    // The connect spy blocks anything but 127.0.0.1 before a packet leaves.
    const answers = ['10.0.0.1', '127.0.0.1'];
    let lookups = 0;
    const proxy = await startProxy({
      config: { proxy: { allow_networks: ['127.0.0.0/8', '10.0.0.0/8'], hosts: {} } },
      dns: async () => ({ address: answers[lookups++ % 2]!, family: 4 }),
    });
    const spy = spyOnConnects((address) => address === '127.0.0.1');
    try {
      const admin = proxy.running.adminAddress!.port;
      for (const port of [admin, proxy.port]) {
        const { socket, status, head } = await openConnect(proxy.port, `rebind.example.test:${port}`);
        socket.destroy();
        expect(status, `port ${port}`).toBe(403);
        expect(head.toLowerCase()).toContain('x-keyway-error: host_not_allowed');
        const raw = await exchange(
          connect(proxy.port, '127.0.0.1'),
          `GET http://rebind.example.test:${port}/healthz HTTP/1.1\r\nHost: rebind.example.test:${port}\r\nConnection: close\r\n\r\n`,
        );
        expect(parseResponse(raw).status, `absolute-form, port ${port}`).toBe(403);
      }
      expect(spy.forbidden()).toEqual([]);
      expect(spy.attempts.filter((a) => a.port === admin)).toEqual([]);
    } finally {
      spy.restore();
      await proxy.stop();
    }
  });
});
