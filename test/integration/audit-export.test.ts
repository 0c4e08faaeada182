// audit.export end to end: a real keyway, real requests by curl, and loopback receivers written from
// the RFCs (test/helpers/siem-receivers.ts): syslog over TCP, CEF over TLS (trusting the test CA),
// syslog over UDP, OCSF over HTTPS. Every received byte is searched for the planted secrets; every
// target gets each line once, in order, across a restart and a receiver down then up.

import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditLine } from '../../src/audit/index.ts';
import { chainFiles } from '../../src/audit/chain-files.ts';
import { startChildProxy } from '../helpers/child-proxy.ts';
import { curl } from '../helpers/clients.ts';
import { exchange, openTunnel, startTls } from '../helpers/raw-http.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { caughtUp, logLines, scrape, seqOf, settled, untilMetrics, untilReceived } from '../helpers/audit-export.ts';
import { seriesKey } from '../helpers/metrics-text.ts';
import { freePort } from '../helpers/ports.ts';
import { httpsReceiver, tcpReceiver, tlsReceiver, udpReceiver, type Receiver } from '../helpers/siem-receivers.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { ocsfProblems } from '../unit/audit-export/ocsf-required.ts';

const GRANT_SECRET = `${CANARY}-grant`;
const QUERY_SECRET = `${CANARY}-query`;
const HEADER_SECRET = `${CANARY}-header`;

let upstream: TestUpstream | undefined;
let proxy: TestProxy | undefined;
const receivers: Receiver[] = [];

afterEach(async () => {
  await proxy?.stop();
  await upstream?.close();
  for (const r of receivers.splice(0)) await r.close().catch(() => undefined);
  proxy = undefined;
  upstream = undefined;
});

function grants() {
  return [{ id: 'github', type: 'bearer' as const, domains: ['api.example.test'], secret: GRANT_SECRET }];
}

async function through(p: TestProxy, path: string, extra: string[] = []): Promise<void> {
  const r = await curl(['-g', '-o', '/dev/null', '-x', p.url, '--cacert', p.bundlePath, ...extra, `https://api.example.test:${upstream!.port}${path}`], {});
  expect(r.code, r.stderr).toBe(0);
}

/** A request written byte for byte (curl percent-encodes |, ] and non-ASCII): the path as given. */
async function rawRequest(p: TestProxy, path: string): Promise<string> {
  const authority = `api.example.test:${upstream!.port}`;
  const tls = await startTls(await openTunnel(p.port, authority), 'api.example.test', readFileSync(p.caPath, 'utf8'));
  return exchange(tls, `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
}

async function readdirNames(p: TestProxy): Promise<string[]> {
  return readdirSync(dirname(p.auditPath));
}

/** Every seq the chain still holds, rotated files first. */
async function allChainSeqs(p: TestProxy): Promise<number[]> {
  const seqs: number[] = [];
  for (const file of await chainFiles(p.auditPath))
    for (const text of readFileSync(file, 'utf8').split('\n')) if (text !== '') seqs.push((JSON.parse(text) as AuditLine).seq);
  return seqs;
}

function noCanary(r: Receiver): void {
  const all = Buffer.concat(r.bytes);
  expect(all.length).toBeGreaterThan(0);
  expect(findLeak(all, CANARY)).toBeUndefined();
}

describe('audit.export to loopback receivers', () => {
  it('sends every line to TCP (syslog), TLS (CEF), UDP (syslog) and HTTPS (OCSF), with no secret, query or header value in any byte', async () => {
    const tcp = await tcpReceiver();
    const tls = await tlsReceiver(TLS_FIXTURES);
    const udp = await udpReceiver();
    const https = await httpsReceiver(TLS_FIXTURES);
    receivers.push(tcp, tls, udp, https);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: grants(),
      config: {
        audit: {
          export: [
            { format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` },
            { format: 'cef', to: `syslog+tls://localhost:${tls.port}`, ca: TLS_FIXTURES.caPath },
            { format: 'syslog', to: `syslog+udp://127.0.0.1:${udp.port}` },
            { format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath },
          ],
        },
      },
    });
    await through(proxy, `/echo?token=${QUERY_SECRET}`, ['-H', `X-Api-Key: ${HEADER_SECRET}`, '-H', `Cookie: s=${HEADER_SECRET}`]);
    // Hostile paths, written byte for byte: keyway refuses an encoded newline (its refusal is a line
    // too, with no path) and writes |, ] and non-ASCII percent-encoded on the line, so of what CEF and
    // RFC 5424 escape only = reaches a formatter this way; formats.test.ts gives them all the raw forms.
    expect(await rawRequest(proxy, `/h|p=1]q/%0A/x?k=${QUERY_SECRET}`)).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rawRequest(proxy, `/h|p=1]q/%C3%A9?k=${QUERY_SECRET}`)).toMatch(/^HTTP\/1\.1 200 /);
    const r = await curl(
      ['-o', '/dev/null', '-x', proxy.url, '--cacert', proxy.bundlePath, `https://bad.example.test:${upstream.port}/x?q=${QUERY_SECRET}`],
      {},
    );
    expect(r.code).not.toBe(0);
    expect(upstream.seen.some((s) => s.headers.authorization === `Bearer ${GRANT_SECRET}`)).toBe(true);
    // The tunnel's line is written as it closes, which may be just after curl has given up.
    await waitFor(() => logLines(proxy!).find((l) => l.host === 'bad.example.test'), 'the tunnel line');

    const lines = logLines(proxy);
    for (const receiver of [tcp, tls, udp, https]) {
      const seqs = await caughtUp(proxy, receiver);
      // Every request's lines are there (each line of the log from the first request on).
      const firstRequest = lines.find((l) => l.path === '/echo')!.seq;
      expect(seqs[0]).toBeLessThanOrEqual(firstRequest);
      expect(receiver.malformed).toEqual([]);
      noCanary(receiver);
      expect(Buffer.concat(receiver.bytes).toString('utf8')).not.toMatch(/token=|k=kw|X-Api-Key|Cookie/i);
    }
    const hostile = lines.find((l) => l.path === '/h%7Cp=1%5Dq/%C3%A9' && l.status === 200)!;
    expect(hostile).toBeDefined();
    expect(lines.some((l) => l.decision === 'deny' && l.code === 'bad_request')).toBe(true);
    // Syslog over TCP: RFC 5424 with the SD element.
    const syslog = tcp.messages.find((m) => m.includes(`seq="${hostile.seq}"`))!;
    expect(syslog).toMatch(/^<\d+>1 \S+ \S+ keyway - inject \[keyway@32473 seq="\d+" /);
    expect(syslog).toContain('path="/h%7Cp=1%5Dq/%C3%A9"');
    // CEF over TLS: = escaped in the extension.
    const cef = tls.messages.find((m) => m.includes(`cn1=${hostile.seq} `))!;
    expect(cef).toMatch(/^<\d+>1 \S+ \S+ keyway - CEF - CEF:0\|keyway\|keyway\|[^|]+\|inject\|/);
    expect(cef).toContain('request=/h%7Cp\\=1%5Dq/%C3%A9 ');
    // UDP: each datagram one whole message.
    expect(udp.messages.every((m) => /^<\d+>1 /.test(m) && m.endsWith(']') === false)).toBe(true);
    // OCSF: every event passes the class's required attributes (OCSF 1.2.0).
    for (const m of https.messages) expect(ocsfProblems(JSON.parse(m) as Record<string, unknown>), m).toEqual([]);
    const events = https.messages.map((m) => JSON.parse(m) as Record<string, unknown>);
    const echo = events.filter((e) => (e['http_request'] as { url?: { path?: string } } | undefined)?.url?.path === '/echo');
    // The write-ahead line (status unknown) and the outcome, as two events of API Activity: Read.
    expect(echo).toMatchObject([
      { type_uid: 600302, status_id: 0, unmapped: { phase: 'sent' } },
      {
        type_uid: 600302,
        status_id: 1,
        http_response: { code: 200 },
        dst_endpoint: { hostname: 'api.example.test' },
        actor: { user: { name: expect.any(String) } },
      },
    ]);
    expect(events.find((e) => e['class_uid'] === 4001)).toMatchObject({ type_uid: 400102, dst_endpoint: { hostname: 'bad.example.test' } });
  });

  it('loses no line and sends none twice across a restart of keyway', async () => {
    const tcp = await tcpReceiver();
    receivers.push(tcp);
    upstream = await startUpstream();
    const config = { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` }] } };
    proxy = await startProxy({ grants: grants(), config });
    for (let i = 0; i < 3; i++) await through(proxy, `/echo?i=${i}`);
    await proxy.stop();
    const home = proxy.home;
    // While it is down the log grows (a CLI change writes its line): those are sent after the restart.
    const stopped = proxy;
    const before = logLines(stopped).at(-1)!.seq;
    const added = await stopped.cli(['grants', 'set', 'github', '--label', 'while=down']);
    expect(added.code, added.stderr).toBe(0);
    const downLine = logLines(stopped).find((l) => l.seq > before && l.decision === 'admin')!;
    expect(downLine, 'the CLI wrote a line while keyway was stopped').toBeDefined();
    proxy = await startProxy({ home, config });
    for (let i = 3; i < 6; i++) await through(proxy, `/echo?i=${i}`);
    const seqs = await caughtUp(proxy, tcp);
    const all = logLines(proxy);
    // Everything after the first line sent is there, through both runs.
    expect(seqs).toEqual(all.filter((l) => l.seq >= seqs[0]!).map((l) => l.seq));
    expect(all.filter((l) => l.path === '/echo' && l.phase === undefined)).toHaveLength(6);
    expect(seqs).toContain(downLine.seq);
  });

  it('a keyway killed (SIGKILL) mid-stream loses no line: the next start goes on from the cursor, repeating at most the batch in flight', async () => {
    const tcp = await tcpReceiver();
    receivers.push(tcp);
    upstream = await startUpstream();
    const config = { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` }] } };
    // The home, its config, grant and CA made once, then run as `keyway start` in a process of its own.
    proxy = await startProxy({ grants: grants(), config });
    const { home, env, bundlePath } = proxy;
    await proxy.stop();
    proxy = undefined;
    const child = await startChildProxy({ home, env: { ...process.env, ...env } as Record<string, string> });
    const url = `http://127.0.0.1:${child.port}`;
    const send = (i: number) => curl(['-o', '/dev/null', '-x', url, '--cacert', bundlePath, `https://api.example.test:${upstream!.port}/echo?i=${i}`], {});
    for (let i = 0; i < 5; i++) expect((await send(i)).code).toBe(0);
    // Killed while requests keep coming and lines are being sent.
    const closed = child.child.exitCode !== null ? Promise.resolve() : once(child.child, 'exit');
    const flowing = Promise.all(Array.from({ length: 10 }, (_, i) => send(100 + i)));
    await new Promise((r) => setTimeout(r, 50));
    child.child.kill('SIGKILL');
    await closed;
    await flowing;
    proxy = await startProxy({ home, config });
    for (let i = 5; i < 8; i++) await through(proxy, `/echo?i=${i}`);
    const head = await settled(proxy, tcp);
    const seqs = tcp.messages.map(seqOf);
    const unique = [...new Set(seqs)].sort((a, b) => a - b);
    // Nothing lost: every seq from the first sent to the log's end.
    expect(unique).toEqual(unique.map((_, i) => unique[0]! + i));
    expect(unique.at(-1)).toBe(head);
    // Repeats only where the kill cut between a batch and its cursor: one run of lines, each twice at most.
    const repeated = unique.filter((q) => seqs.filter((x) => x === q).length > 1);
    expect(seqs.length - unique.length).toBe(repeated.length);
    if (repeated.length > 0) expect(repeated).toEqual(repeated.map((_, i) => repeated[0]! + i));
  });

  it('sends from one keyway of a home at a time: a second waits, and takes over when the first stops', async () => {
    const tcp = await tcpReceiver();
    receivers.push(tcp);
    upstream = await startUpstream();
    const config = { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` }] } };
    proxy = await startProxy({ grants: grants(), config });
    const second = await startProxy({ home: proxy.home, config });
    try {
      for (let i = 0; i < 3; i++) {
        await through(proxy, `/echo?first=${i}`);
        await through(second, `/echo?second=${i}`);
      }
      await caughtUp(second, tcp);
      const held = await scrape(second);
      expect(held.get(seriesKey('keyway_audit_export_sent_lines', { target: 'audit.export[0]', format: 'syslog' }))).toBe(0);
      await proxy.stop();
      proxy = undefined;
      for (let i = 3; i < 5; i++) await through(second, `/echo?second=${i}`);
      // The second takes the lock at its next try (every 5 s) and goes on from the first's cursor.
      await caughtUp(second, tcp);
    } finally {
      await second.stop();
    }
  });

  it('follows the chain through rotations, and counts the lines pruned before a receiver down got them', async () => {
    const port = await freePort();
    upstream = await startUpstream();
    const long = 'r'.repeat(1500);
    const config = { audit: { max_bytes: '8KiB', keep: 2, min_retention: '0s', export: [{ format: 'cef', to: `syslog+tcp://127.0.0.1:${port}` }] } };
    const tcp = await tcpReceiver(port);
    receivers.push(tcp);
    proxy = await startProxy({ grants: grants(), config });
    // About 3 KiB of lines a request into 8 KiB files: a rotation every few requests.
    for (let i = 0; i < 12; i++) await through(proxy, `/echo/${i}/${long}`);
    const seqs = await caughtUp(proxy, tcp);
    expect((await readdirNames(proxy)).filter((n) => /^audit\.\d+\.jsonl$/.test(n)).length).toBeGreaterThan(0);
    const lastSent = seqs.at(-1)!;
    // The receiver goes away; rotation prunes lines it never got; it comes back.
    await tcp.close();
    for (let i = 12; i < 40; i++) await through(proxy, `/echo/${i}/${long}`);
    const labels = { target: 'audit.export[0]', format: 'cef' };
    await untilMetrics(proxy, (m) => (m.get(seriesKey('keyway_audit_export_failures', labels)) ?? 0) >= 1, 'a failed send');
    const back = await tcpReceiver(port);
    receivers.push(back);
    const head = logLines(proxy).at(-1)!.seq;
    await untilReceived(back, head, 40_000);
    const after = back.messages.map(seqOf);
    expect(new Set(after).size).toBe(after.length);
    expect(after).toEqual(after.map((_, i) => after[0]! + i));
    // What the log still held was sent from where it begins; the rest was counted as missed, and said.
    const firstKept = (await allChainSeqs(proxy))[0]!;
    expect(after[0]).toBe(Math.max(lastSent + 1, firstKept));
    const missed = (await scrape(proxy)).get(seriesKey('keyway_audit_export_missed_lines', labels))!;
    expect(missed).toBeGreaterThan(0);
    expect(missed).toBe(after[0]! - lastSent - 1);
    expect(proxy.logs.join('')).toContain('gone from the log before they could be exported');
  });

  it('holds a backlog while the receiver is down, counts it in /metrics, and sends it once the receiver is up', async () => {
    const port = await freePort();
    upstream = await startUpstream();
    proxy = await startProxy({ grants: grants(), config: { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${port}` }] } } });
    for (let i = 0; i < 3; i++) await through(proxy, `/echo?i=${i}`);
    const key = (name: string) => seriesKey(name, { target: 'audit.export[0]', format: 'syslog' });
    const down = await untilMetrics(
      proxy,
      (m) => (m.get(key('keyway_audit_export_behind_lines')) ?? 0) >= 6 && (m.get(key('keyway_audit_export_failures')) ?? 0) >= 1,
      'the backlog to show in /metrics',
    );
    expect(down.get(key('keyway_audit_export_sent_lines'))).toBe(0);
    expect(proxy.logs.join('')).toContain('ECONNREFUSED');
    const tcp = await tcpReceiver(port);
    receivers.push(tcp);
    // Backoff doubles from 0.5 s: a few seconds at most after the receiver is back.
    await caughtUp(proxy, tcp);
    const up = await untilMetrics(proxy, (m) => m.get(key('keyway_audit_export_behind_lines')) === 0, 'the backlog to drain');
    expect(up.get(key('keyway_audit_export_sent_lines'))).toBeGreaterThanOrEqual(6);
  });

  it('over HTTPS moves the cursor only on a 2xx: lines answered 503 are sent again, once, when it recovers', async () => {
    let status = 503;
    const https = await httpsReceiver(TLS_FIXTURES, () => status);
    receivers.push(https);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: grants(),
      config: { audit: { export: [{ format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath }] } },
    });
    for (let i = 0; i < 3; i++) await through(proxy, `/echo?i=${i}`);
    const key = (name: string) => seriesKey(name, { target: 'audit.export[0]', format: 'ocsf' });
    await untilMetrics(proxy, (m) => (m.get(key('keyway_audit_export_failures')) ?? 0) >= 2, 'two refused posts');
    expect(https.messages).toEqual([]);
    expect(proxy.logs.join('')).toContain('HTTP 503');
    status = 200;
    const seqs = await caughtUp(proxy, https);
    expect(seqs.length).toBeGreaterThanOrEqual(6);
    for (const m of https.messages) expect(ocsfProblems(JSON.parse(m) as Record<string, unknown>)).toEqual([]);
  });

  it('verifies the receiver over TLS and HTTPS: one the given CA did not sign gets nothing', async () => {
    const untrusted = { cert: TLS_FIXTURES.untrustedCert, key: TLS_FIXTURES.untrustedKey };
    const tls = await tlsReceiver(untrusted);
    const https = await httpsReceiver(untrusted);
    receivers.push(tls, https);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: grants(),
      config: {
        audit: {
          export: [
            { format: 'syslog', to: `syslog+tls://localhost:${tls.port}`, ca: TLS_FIXTURES.caPath },
            { format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath },
          ],
        },
      },
    });
    await through(proxy, '/echo');
    await untilMetrics(
      proxy,
      (m) =>
        (m.get(seriesKey('keyway_audit_export_failures', { target: 'audit.export[0]', format: 'syslog' })) ?? 0) >= 1 &&
        (m.get(seriesKey('keyway_audit_export_failures', { target: 'audit.export[1]', format: 'ocsf' })) ?? 0) >= 1,
      'both sends to fail',
    );
    expect(tls.messages).toEqual([]);
    expect(https.messages).toEqual([]);
    expect(proxy.logs.join('')).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
  });
});
