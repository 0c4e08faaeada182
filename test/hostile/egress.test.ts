import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { CANARY } from '../helpers/fixtures.ts';
import { BlockList, connect, isIP } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy } from '../../src/policy/egress.ts';
import { isLocalAddress } from '../../src/egress/local-addresses.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { exchange, openConnect, parseResponse } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { spyOnConnects, type ConnectSpy } from './egress-connect-spy.ts';
import { inetAton, ipv6FormsOf, metadataLiterals, NUMERIC_NAMES, rangeEdges, REFUSED_V4, REFUSED_V6, type AddressForm } from './egress-forms.ts';
import { report, scale } from './scale.ts';

// The Egress suite (issue 8): address forms an agent can use to reach what keyway must refuse
// (loopback, private, link-local, metadata, keyway's own ports), judged (a) as pure functions,
// (b) end to end through CONNECT, absolute-form and proxy.hosts, (c) behind a resolver that
// alternates between an allowed loopback address and refused ones. Every TCP connection made in
// this process passes the connect spy: anything but 127.0.0.1 is counted and blocked before a
// packet leaves, so a regression shows up as a number here, never as traffic.

const ONLY_127_0_0_1 = new BlockList();
ONLY_127_0_0_1.addAddress('127.0.0.1', 'ipv4'); // also matches ::ffff:127.0.0.1 in any spelling
const isTestAddress = (a: string) => isIP(a) !== 0 && ONLY_127_0_0_1.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
const ONLY_LOOPBACK_V4 = new BlockList();
ONLY_LOOPBACK_V4.addSubnet('127.0.0.0', 8, 'ipv4');

/** Every refused IPv4 edge, also written in each IPv6 form that names it. */
function corpus(): AddressForm[] {
  const edges = rangeEdges();
  const v4Refused = edges.filter((f) => f.refused && isIP(f.address) === 4);
  const embedded = v4Refused.flatMap((f) => ipv6FormsOf(f.address).map((g) => ({ address: g.address, what: `${f.what}, ${g.what}`, refused: true })));
  return [...edges, ...embedded, ...metadataLiterals()];
}

const FORMS = corpus();
const REFUSED_FORMS = FORMS.filter((f) => f.refused);

async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

async function connectStatus(proxyPort: number, authority: string): Promise<{ status: number; code: string | undefined }> {
  const { socket, status, head } = await openConnect(proxyPort, authority);
  socket.destroy();
  return { status, code: /x-keyway-error: (\S+)/i.exec(head)?.[1] };
}

/** An absolute-form GET; the Host header is the URL's host as a browser would write it. */
async function absoluteGet(proxyPort: number, hostPort: string, path = '/echo'): Promise<{ status: number; code: string | undefined }> {
  const host = new URL(`http://${hostPort}/`).host;
  const raw = await exchange(connect(proxyPort, '127.0.0.1'), `GET http://${hostPort}${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const res = parseResponse(raw);
  return { status: res.status, code: res.headers['x-keyway-error'] };
}

/**
 * The path of every request that must be refused, marked for this run: the test upstream listens on
 * a free port that another file's client may still dial, so "the upstream saw none" is asked of
 * these requests only (a stray failed `upstream.seen.length === 0` once, in policy-bypass.test.ts).
 */
const REFUSED_PATH = `/refused-${randomBytes(6).toString('hex')}`;

const bracket = (a: string) => (isIP(a) === 6 ? `[${a}]` : a);

describe('Egress suite', () => {
  let spy: ConnectSpy;
  let upstream: TestUpstream;
  let tlsUpstream: TestUpstream;
  const figures: Record<string, unknown> = {};
  // The only destinations a connection may reach: 127.0.0.1 on these ports (the proxies' own
  // listeners, which the test clients dial, and the test upstream). Admin ports are never here.
  const allowedPorts = new Set<number>();

  beforeAll(async () => {
    spy = spyOnConnects((address, port) => isTestAddress(address) && allowedPorts.has(port));
    // Answers and closes, so every allowed request in (c) is one connection and one lookup.
    upstream = await startUpstream({
      tls: 'plain',
      handler: (_req, res) => {
        res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' }).end('ok');
        return true;
      },
    });
    tlsUpstream = await startUpstream({
      tls: 'trusted',
      handler: (_req, res) => {
        res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' }).end('ok');
        return true;
      },
    });
    allowedPorts.add(upstream.port);
    allowedPorts.add(tlsUpstream.port);
  });
  afterAll(async () => {
    spy?.restore();
    await upstream?.close();
    await tlsUpstream?.close();
    report('egress', figures);
  });

  describe('(a) pure functions', () => {
    it(`judges ${FORMS.length} address forms as the contract says (both edges of every refused range, metadata, mapped/compatible/translated/NAT64/6to4/Teredo)`, () => {
      expect(REFUSED_FORMS.length).toBeGreaterThanOrEqual(150);
      const policy = new EgressPolicy();
      const wrong = FORMS.filter((f) => (policy.check(f.address).allowed === false) !== f.refused).map((f) => `${f.address} (${f.what})`);
      expect(wrong).toEqual([]);
      figures['forms'] = FORMS.length;
      figures['forms_refused'] = REFUSED_FORMS.length;
      figures['ranges'] = REFUSED_V4.length + REFUSED_V6.length;
    });

    it('every spelling of a loopback or this-network address is local, so own ports stay closed whatever allow_networks says', () => {
      const loopbacks = ['127.0.0.1', '127.255.255.255', '0.0.0.0', '::1', '::'];
      const forms = loopbacks.flatMap((a) =>
        isIP(a) === 4
          ? [
              a,
              ...ipv6FormsOf(a)
                .filter((f) => !/6to4|Teredo/.test(f.what))
                .map((f) => f.address),
            ]
          : [a],
      );
      expect(forms.filter((a) => !isLocalAddress(a))).toEqual([]);
      const permissive = new EgressPolicy(['127.0.0.0/8']);
      // Allowing 127.0.0.0/8 lets the mapped spellings through (the same address) and nothing else.
      const passed = forms.filter((a) => permissive.check(a).allowed);
      expect(passed.filter((a) => !ONLY_LOOPBACK_V4.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4'))).toEqual([]);
      expect(passed).toContain('::ffff:127.0.0.1');
      expect(passed).not.toContain('::127.0.0.1');
    });

    it('host text only a resolver reads as a number is not an address: the lookup answer is judged', () => {
      const policy = new EgressPolicy(['127.0.0.0/8']);
      for (const { name, means } of NUMERIC_NAMES) {
        expect(inetAton(name), name).toBe(means);
        expect(policy.check(name).allowed, name).toBe(false);
      }
    });
  });

  describe('(b) end to end', () => {
    let strict: TestProxy;
    let mapped: TestProxy;
    let loopbackAllowed: TestProxy;
    let numeric: TestProxy;
    const mapNames = new Map<string, AddressForm>();

    beforeAll(async () => {
      REFUSED_FORMS.forEach((f, i) => {
        mapNames.set(`h${i}.map.test`, f);
      });
      strict = await startProxy({ config: { proxy: { allow_networks: [] } } });
      // The same names also under a grant, so the intercepted path (TLS, injection) is tried too.
      const hosts = Object.fromEntries(
        [...mapNames].flatMap(([n, f]) => [
          [n, f.address],
          [n.replace('.map.test', '.grant.test'), f.address],
        ]),
      );
      mapped = await startProxy({
        config: { proxy: { allow_networks: [], hosts } },
        grants: [{ id: 'granted', type: 'bearer', domains: ['*.grant.test'], secret: CANARY }],
      });
      loopbackAllowed = await startProxy();
      // Numeric names go to the real system resolver, but only names inet_aton reads as numbers,
      // which getaddrinfo answers without asking DNS; anything else would fail the test here.
      numeric = await startProxy({
        config: { proxy: { allow_networks: ['127.0.0.1/32'], hosts: {} } },
        dns: async (host) => {
          const expected = inetAton(host);
          if (expected === undefined) throw new Error(`the suite looks up numeric names only, not ${host}`);
          const found = await lookup(host, { family: 4 });
          if (found.address !== expected) throw new Error(`${host}: the system says ${found.address}, inet_aton ${expected}`);
          return { address: found.address, family: 4 };
        },
      });
      for (const p of [strict, mapped, loopbackAllowed, numeric]) allowedPorts.add(p.port);
    });
    afterAll(async () => {
      await Promise.all([strict?.stop(), mapped?.stop(), loopbackAllowed?.stop(), numeric?.stop()]);
    });

    it('CONNECT, absolute-form and proxy.hosts names for every refused form: 403 host_not_allowed (400 for unparseable), 0 connections', async () => {
      const before = spy.forbidden().length;
      const literal = REFUSED_FORMS.filter((f) => !f.address.includes('%'));
      const viaConnect = await pool(literal, 8, (f) => connectStatus(strict.port, `${bracket(f.address)}:${upstream.port}`));
      const viaAbsolute = await pool(literal, 8, (f) => absoluteGet(strict.port, `${bracket(f.address)}:${upstream.port}`, REFUSED_PATH));
      const names = [...mapNames.keys()];
      const viaHostsConnect = await pool(names, 8, (n) => connectStatus(mapped.port, `${n}:${upstream.port}`));
      const viaHostsAbsolute = await pool(names, 8, (n) => absoluteGet(mapped.port, `${n}:${upstream.port}`, REFUSED_PATH));
      const zoned = await connectStatus(strict.port, `[fd00:ec2::254%eth0]:${upstream.port}`);
      const all = [...viaConnect, ...viaAbsolute, ...viaHostsConnect, ...viaHostsAbsolute];
      const notRefused = all.map((r, i) => ({ ...r, i })).filter((r) => r.status !== 403 || r.code !== 'host_not_allowed');
      expect(notRefused).toEqual([]);
      expect(zoned).toEqual({ status: 400, code: 'bad_request' });
      expect(spy.forbidden().length - before).toBe(0);
      expect(upstream.seen.filter((r) => r.url.startsWith(REFUSED_PATH))).toEqual([]);
      figures['e2e_requests'] = all.length + 1;
      figures['e2e_refused'] = all.filter((r) => r.status === 403).length + 1;
      figures['e2e_connects_to_refused'] = spy.forbidden().length - before;
    });

    it('granted (intercepted) names mapped to refused forms: 403 inside the tunnel, the credential never leaves', async () => {
      const before = spy.forbidden().length;
      const names = [...mapNames.keys()].map((n) => n.replace('.map.test', '.grant.test'));
      const sample = names.filter((_, i) => i % Math.max(1, Math.floor(names.length / scale(40, names.length))) === 0);
      const agent = new ProxyAgent({ uri: mapped.url, requestTls: { ca: readFileSync(mapped.caPath, 'utf8') } });
      try {
        const statuses = await pool(sample, 4, async (n) => {
          const res = await request(`https://${n}:${upstream.port}${REFUSED_PATH}`, { dispatcher: agent });
          const body = await res.body.text();
          expect(body).not.toContain(CANARY);
          return { status: res.statusCode, code: res.headers['x-keyway-error'] };
        });
        expect(statuses.filter((r) => r.status !== 403 || r.code !== 'host_not_allowed')).toEqual([]);
      } finally {
        await agent.close();
      }
      expect(spy.forbidden().length - before).toBe(0);
      expect(upstream.seen.filter((r) => r.url.startsWith(REFUSED_PATH))).toEqual([]);
      figures['e2e_intercepted'] = sample.length;
    });

    it("every loopback spelling on keyway's own ports is refused although 127.0.0.0/8 is allowed", async () => {
      const before = spy.forbidden().length;
      const spellings = ['127.0.0.1', '127.0.0.2', '::1', ...ipv6FormsOf('127.0.0.1').map((f) => f.address)];
      const ports = [loopbackAllowed.port, loopbackAllowed.running.adminAddress!.port];
      const cases = spellings.flatMap((a) => ports.map((p) => `${bracket(a)}:${p}`));
      const connects = await pool(cases, 8, (c) => connectStatus(loopbackAllowed.port, c));
      const absolutes = await pool(cases, 8, (c) => absoluteGet(loopbackAllowed.port, c));
      expect([...connects, ...absolutes].filter((r) => r.status !== 403)).toEqual([]);
      expect(spy.forbidden().length - before).toBe(0);
      figures['own_port_cases'] = connects.length + absolutes.length;
    });

    it('numeric host names (2852039166, 0251.0376.0251.0376, 0x7f.1, …) are decided on the address the lookup returns', async () => {
      const before = spy.forbidden().length;
      const viaConnect = await pool(NUMERIC_NAMES, 4, ({ name }) => connectStatus(numeric.port, `${name}:${upstream.port}`));
      // Absolute-form: the URL parser already turns these into dotted IPv4, checked as literals.
      const viaAbsolute = await pool(NUMERIC_NAMES, 4, ({ name }) => absoluteGet(numeric.port, `${name}:${upstream.port}`));
      // Only 127.0.0.1/32 is allowed: the loopback spellings get through to the test upstream, the
      // rest are refused, and no connection goes anywhere else.
      const expected = NUMERIC_NAMES.map(({ means }) => (means === '127.0.0.1' ? 200 : 403));
      expect(viaConnect.map((r) => r.status)).toEqual(expected);
      expect(viaAbsolute.map((r) => r.status)).toEqual(expected);
      expect(spy.forbidden().length - before).toBe(0);
      figures['numeric_names'] = NUMERIC_NAMES.length;
    });
  });

  describe('(c) a resolver that alternates between an allowed and a refused answer', () => {
    const REFUSED_ANSWERS = [
      '127.0.0.2',
      '10.0.0.1',
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '0:0:0:0:0:ffff:7f00:2',
      '64:ff9b::a9fe:a9fe',
      'fd00:ec2::254',
      '::127.0.0.1',
      '::ffff:0:127.0.0.1',
      '2002:a9fe:a9fe::1',
      '192.0.2.1',
      '0.0.0.0',
      '::1',
      '100.100.100.200',
      'fe80::1',
      '0000:0000:0000:0000:0000:ffff:0a00:0001',
      '64:ff9b:1::7f00:1',
      'fec0::1',
      '2001:db8::1',
    ];

    it(`${scale(500, 4_000)} requests (tunnels, absolute-form, intercepted): every refused answer refused, 0 connections to refused addresses`, async () => {
      const answers: Array<{ host: string; address: string }> = [];
      const proxy = await startProxy({
        config: { proxy: { allow_networks: ['127.0.0.1/32'], hosts: {} } },
        grants: [{ id: 'flip', type: 'bearer', domains: ['*.example.test'], secret: CANARY }],
        dns: async (host) => {
          const i = answers.length;
          const address = i % 2 === 0 ? '127.0.0.1' : REFUSED_ANSWERS[(i >> 1) % REFUSED_ANSWERS.length]!;
          answers.push({ host, address });
          return { address, family: isIP(address) === 6 ? 6 : 4 };
        },
      });
      allowedPorts.add(proxy.port);
      const before = spy.attempts.length;
      const attempts = () => spy.attempts.slice(before);
      const deadline = Date.now() + scale(60_000, 600_000);
      const total = scale(500, 4_000);
      const started = Date.now();
      const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
      try {
        const results = await pool(
          Array.from({ length: total }, (_, i) => i),
          16,
          async (i) => {
            if (Date.now() > deadline) return { kind: 'skipped', status: 0 };
            // Tunnels re-resolve one name every time (rebinding); absolute-form uses a fresh name each time.
            // Intercepted: a fresh granted name each time, so keyway's upstream pool looks it up once.
            if (i % 2 === 0) return { kind: 'tunnel', ...(await connectStatus(proxy.port, `flip.egress.test:${upstream.port}`)) };
            if (i % 4 === 1) return { kind: 'absolute', ...(await absoluteGet(proxy.port, `n${i}.egress.test:${upstream.port}`)) };
            const res = await request(`https://f${i}.example.test:${tlsUpstream.port}/`, { dispatcher: agent });
            const body = await res.body.text();
            if (res.statusCode !== 200 && body.includes(CANARY)) throw new Error('the credential came back');
            return { kind: 'intercepted', status: res.statusCode };
          },
        );
        const done = results.filter((r) => r.kind !== 'skipped');
        const unexpected = done.filter((r) => r.status !== 200 && r.status !== 403);
        expect(unexpected).toEqual([]);
        // Tunnels and absolute-form make one lookup per request: each refused answer is exactly one
        // 403. An intercepted host is also warmed up on CONNECT (prewarm.ts); a refused warm-up is
        // looked up again for the request, so there each connection, not each request, is judged.
        const refusedFor = (match: (host: string) => boolean) => answers.filter((a) => match(a.host) && !isTestAddress(a.address)).length;
        const count = (kind: string, status: number) => done.filter((r) => r.kind === kind && r.status === status).length;
        expect(count('tunnel', 403)).toBe(refusedFor((h) => h === 'flip.egress.test'));
        expect(count('absolute', 403)).toBe(refusedFor((h) => h.endsWith('.egress.test') && h !== 'flip.egress.test'));
        expect(answers.length).toBeGreaterThanOrEqual(done.length);
        expect(attempts().filter((a) => a.blocked)).toEqual([]);
        expect(done.length).toBe(total);
        Object.assign(figures, {
          alternating_requests: done.length,
          alternating_lookups: answers.length,
          alternating_refused_answers: answers.filter((a) => !isTestAddress(a.address)).length,
          alternating_refused: done.filter((r) => r.status === 403).length,
          alternating_allowed: done.filter((r) => r.status === 200).length,
          alternating_connects_to_refused: attempts().filter((a) => a.blocked).length,
          alternating_connects_to_test_address: attempts().filter((a) => !a.blocked && (a.port === upstream.port || a.port === tlsUpstream.port)).length,
          alternating_intercepted: done.filter((r) => r.kind === 'intercepted').length,
          alternating_seconds: Math.round((Date.now() - started) / 100) / 10,
        });
      } finally {
        await agent.close();
        await proxy.stop();
      }
    });
  });
});
