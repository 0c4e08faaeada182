// audit.export, the receiver's side (issue 90, item 3): an HTTPS receiver's token by reference (a
// wrong one refused, never shown), what `keyway status`, /api/status and /readyz say of a target
// (host only; a receiver down is not unready), a receiver that resets mid-batch, a line written
// while the receiver is down with a rotation in between, and an anomaly signal end to end.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { caughtUp, exportSeries, logLines, scrape, seqOf, settled, untilMetrics, untilReceived } from '../helpers/audit-export.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { freePort } from '../helpers/ports.ts';
import { httpsReceiver, tcpReceiver, type Receiver } from '../helpers/siem-receivers.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const RIGHT = `${CANARY}-hec-right`;
const WRONG = `${CANARY}-hec-wrong`;

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

const grants = () => [{ id: 'github', type: 'bearer' as const, domains: ['api.example.test'], secret: `${CANARY}-grant` }];

async function through(p: TestProxy, path: string, user = ''): Promise<void> {
  const proxyUrl = user === '' ? p.url : p.url.replace('http://', `http://${user}@`);
  const r = await curl(['-o', '/dev/null', '-x', proxyUrl, '--cacert', p.bundlePath, `https://api.example.test:${upstream!.port}${path}`], {});
  expect(r.code, r.stderr).toBe(0);
}

async function admin(p: TestProxy, path: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const token = readFileSync(p.running.services.paths.adminToken, 'utf8').trim();
  const res = await request(`http://127.0.0.1:${p.running.adminAddress!.port}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown>, text };
}

describe('audit.export: an HTTPS receiver with a token, status, and receivers that fail', () => {
  it('sends a Splunk HEC token by reference; the receiver refuses a wrong one (401, nothing taken); the token is in no log, status or cursor', async () => {
    const https = await httpsReceiver(TLS_FIXTURES, (req) => (req.headers.authorization === `Splunk ${RIGHT}` ? 200 : 401));
    receivers.push(https);
    upstream = await startUpstream();
    // Started with the wrong token in the file; the right one is written while it runs (a file: secret is read at each send).
    const base = await startProxy({ grants: grants() });
    const home = base.home;
    await base.stop();
    const tokenFile = join(home, 'hec.token');
    writeFileSync(tokenFile, `${WRONG}\n`, { mode: 0o600 });
    const to = `https://localhost:${https.port}/services/collector/raw?channel=${CANARY}-channel`;
    proxy = await startProxy({
      home,
      env: { BEARER_FOR_SECOND: `${CANARY}-bearer` },
      config: {
        audit: {
          export: [
            { format: 'ocsf', to, ca: TLS_FIXTURES.caPath, headers: { Authorization: { secret: 'file:hec.token', format: 'Splunk {secret}' } } },
            {
              format: 'ocsf',
              to: `https://localhost:${https.port}/second`,
              ca: TLS_FIXTURES.caPath,
              headers: { Authorization: { secret: 'env:BEARER_FOR_SECOND', format: 'Bearer {secret}' } },
            },
          ],
        },
      },
    });
    await through(proxy, '/echo');
    const failed = await untilMetrics(
      proxy,
      (m) =>
        (m.get(exportSeries('keyway_audit_export_failures', 0, 'ocsf')) ?? 0) >= 1 &&
        (m.get(exportSeries('keyway_audit_export_failures', 1, 'ocsf')) ?? 0) >= 1,
      'both targets refused',
    );
    expect(failed.get(exportSeries('keyway_audit_export_sent_lines', 0, 'ocsf'))).toBe(0);
    // The receiver saw the wrong token, and took nothing with it.
    expect(https.headers.some((h) => h.authorization === `Splunk ${WRONG}`)).toBe(true);
    expect(https.headers.some((h) => h.authorization === `Bearer ${CANARY}-bearer`)).toBe(true);
    expect(https.messages).toEqual([]);
    const refused = await admin(proxy, '/api/status');
    expect(refused.body['audit_export']).toMatchObject([
      { target: 'audit.export[0]', host: `localhost:${https.port}`, last_error: 'HTTP 401', last_success: null },
      { target: 'audit.export[1]', last_error: 'HTTP 401' },
    ]);
    expect(proxy.logs.join('')).toContain('HTTP 401');
    // The right token, written while it runs: the backlog goes at the next try, once.
    writeFileSync(tokenFile, `${RIGHT}\n`);
    await untilMetrics(proxy, (m) => (m.get(exportSeries('keyway_audit_export_sent_lines', 0, 'ocsf')) ?? 0) >= 1, 'the right token taken');
    await through(proxy, '/echo?again=1');
    const cli = await proxy.cli(['status']);
    const json = await proxy.cli(['status', '--json']);
    const outputs = [
      proxy.logs.join(''),
      refused.text,
      (await admin(proxy, '/api/status')).text,
      (await admin(proxy, '/readyz')).text,
      cli.stdout,
      cli.stderr,
      json.stdout,
    ];
    const metricsText = await (
      await request(`http://127.0.0.1:${proxy.running.adminAddress!.port}/metrics`, {
        headers: { authorization: `Bearer ${readFileSync(proxy.running.services.paths.adminToken, 'utf8').trim()}` },
      })
    ).body.text();
    outputs.push(metricsText);
    for (const name of readdirSync(join(proxy.running.services.paths.dataDir, 'audit-export')))
      outputs.push(readFileSync(join(proxy.running.services.paths.dataDir, 'audit-export', name), 'utf8').replace(to, ''));
    for (const text of outputs) {
      expect(findLeak(text, RIGHT), 'the right token').toBeUndefined();
      expect(findLeak(text, WRONG), 'the wrong token').toBeUndefined();
      expect(findLeak(text, `${CANARY}-bearer`), 'the bearer').toBeUndefined();
    }
    // Status names the host; the URL's path and query (a channel, a tenant) stay in the config.
    for (const text of outputs.slice(0, 7)) expect(text).not.toMatch(/collector|channel=/);
    expect(cli.stdout).toMatch(
      new RegExp(`audit\\.export\\[0\\]  ocsf to localhost:${https.port}  \\d+ lines behind, last sent \\S+, last error HTTP 401 at `),
    );
    expect(JSON.parse(json.stdout).audit_export[0]).toMatchObject({ host: `localhost:${https.port}`, last_error: 'HTTP 401' });
  });

  it('status and /readyz while the receiver is down: lines behind and the last error by host; keyway stays ready; then the last success', async () => {
    const port = await freePort();
    upstream = await startUpstream();
    proxy = await startProxy({ grants: grants(), config: { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${port}` }] } } });
    for (let i = 0; i < 3; i++) await through(proxy, `/echo?i=${i}`);
    await untilMetrics(proxy, (m) => (m.get(exportSeries('keyway_audit_export_behind_lines', 0, 'syslog')) ?? 0) >= 6, 'a backlog');
    const down = await admin(proxy, '/api/status');
    expect(down.body['audit_export']).toMatchObject([
      {
        target: 'audit.export[0]',
        format: 'syslog',
        host: `127.0.0.1:${port}`,
        last_success: null,
        last_error: 'ECONNREFUSED',
        failing_since: expect.any(String),
      },
    ]);
    expect((down.body['audit_export'] as Array<{ behind: number }>)[0]!.behind).toBeGreaterThanOrEqual(6);
    const ready = await request(`http://127.0.0.1:${proxy.running.adminAddress!.port}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toMatchObject({ ready: true });
    expect((await scrape(proxy)).get(exportSeries('keyway_audit_export_last_success_seconds', 0, 'syslog'))).toBe(0);
    const tcp = await tcpReceiver(port);
    receivers.push(tcp);
    await caughtUp(proxy, tcp);
    await untilMetrics(proxy, (m) => m.get(exportSeries('keyway_audit_export_behind_lines', 0, 'syslog')) === 0, 'the backlog sent');
    const up = await admin(proxy, '/api/status');
    const [view] = up.body['audit_export'] as Array<Record<string, unknown>>;
    expect(view).toMatchObject({ behind: 0, failing_since: null, last_error: 'ECONNREFUSED', last_success: expect.any(String) });
    const at = (
      await untilMetrics(proxy, (m) => (m.get(exportSeries('keyway_audit_export_last_success_seconds', 0, 'syslog')) ?? 0) > 0, 'a success time')
    ).get(exportSeries('keyway_audit_export_last_success_seconds', 0, 'syslog'))!;
    expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(120);
    const cli = await proxy.cli(['status']);
    expect(cli.stdout).toMatch(/audit\.export\[0\] {2}syslog to 127\.0\.0\.1:\d+ {2}\d+ lines behind, last sent /);
    // A changed target is applied at restart: the reload says so, and the running sender stays.
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(file, 'utf8')) as { audit: { export: unknown[] } };
    config.audit.export = [{ format: 'cef', to: `syslog+tcp://127.0.0.1:${port}` }];
    writeFileSync(file, stringify(config));
    const reload = await proxy.cli(['reload']);
    expect(reload.code, reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/reloaded its config: changed audit\.export; a restart applies audit\.export/);
    await through(proxy, '/echo?after=reload');
    await settled(proxy, tcp);
    expect(tcp.messages.at(-1)).toMatch(/^<\d+>1 \S+ \S+ keyway - \w+ \[keyway@32473 /);
  });

  it('an HTTPS receiver that resets mid-batch gets the batch again, whole, once', async () => {
    let resets = 2;
    const https = await httpsReceiver(TLS_FIXTURES, () => (resets-- > 0 ? 'reset' : 200));
    receivers.push(https);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: grants(),
      config: { audit: { export: [{ format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath }] } },
    });
    for (let i = 0; i < 4; i++) await through(proxy, `/echo?i=${i}`);
    const seqs = await caughtUp(proxy, https);
    expect(seqs.length).toBeGreaterThanOrEqual(8);
    expect(resets).toBeLessThan(0);
    expect(proxy.logs.join('')).toMatch(/ECONNRESET|socket hang up|EPIPE/);
  });

  it('a syslog receiver that resets after taking part of a batch: the lines after are sent again, none lost', async () => {
    const port = await freePort();
    const tcp = await tcpReceiver(port, { resetAfter: 2 });
    receivers.push(tcp);
    upstream = await startUpstream();
    // Lines written before the receiver is reachable go as one batch when it is.
    proxy = await startProxy({ grants: grants(), config: { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${port}` }] } } });
    for (let i = 0; i < 4; i++) await through(proxy, `/echo?i=${i}`);
    await settled(proxy, tcp);
    const seqs = tcp.messages.map(seqOf);
    const unique = [...new Set(seqs)].sort((a, b) => a - b);
    expect(unique, 'none lost').toEqual(unique.map((_, i) => unique[0]! + i));
    expect(unique.at(-1)).toBe(logLines(proxy).at(-1)!.seq);
    // What came twice is one run: the batch written as the receiver reset, sent again.
    const repeated = unique.filter((q) => seqs.filter((x) => x === q).length > 1);
    expect(seqs.length - unique.length).toBe(repeated.length);
    if (repeated.length > 0) expect(repeated).toEqual(repeated.map((_, i) => repeated[0]! + i));
    expect(proxy.logs.join('')).toContain('sending the batches it may have lost again');
  });

  it('a syslog receiver that resets after taking 2 batches of a backlog of more: every batch written on the connection goes again, none lost', async () => {
    const port = await freePort();
    upstream = await startUpstream();
    const config = { audit: { export: [{ format: 'syslog', to: `syslog+tcp://127.0.0.1:${port}` }] } };
    // The target's cursor made at the log's end, then a backlog of more than 3 batches (200 lines each)
    // written by a keyway of the home without the target: the next start catches up, batch after batch.
    const first = await startProxy({ grants: grants(), config });
    const home = first.home;
    await first.stop();
    const cursorSeq = logLines(first).at(-1)?.seq ?? 0;
    proxy = await startProxy({ home });
    const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') } });
    try {
      while ((logLines(proxy).at(-1)?.seq ?? 0) - cursorSeq < 850) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const res = await request(`https://api.example.test:${upstream!.port}/echo?i=${i}`, { dispatcher: agent });
            await res.body.text();
            expect(res.statusCode).toBe(200);
          }),
        );
      }
    } finally {
      await agent.close();
    }
    await proxy.stop();
    // The receiver reads nothing for a moment (the sender writes its backlog into the kernel), then
    // resets after 2 batches' worth: what the kernel held past them is gone with the connection.
    const tcp = await tcpReceiver(port, { resetAfter: 400, holdMs: 1_000 });
    receivers.push(tcp);
    proxy = await startProxy({ home, config });
    // The receiver took 2 batches and reset; the next line written (a break is told at the next send) sends again.
    await untilReceived(tcp, cursorSeq + 400);
    await through(proxy, '/echo/after-reset');
    const head = await settled(proxy, tcp);
    const seqs = tcp.messages.map(seqOf);
    const unique = [...new Set(seqs)].sort((a, b) => a - b);
    expect(unique[0]).toBe(cursorSeq + 1);
    expect(unique, 'every seq arrives').toEqual(unique.map((_, i) => cursorSeq + 1 + i));
    expect(unique.at(-1)).toBe(head);
    expect(proxy.logs.join('')).toContain('sending the batches it may have lost again');
  });

  it('a line written while the receiver is down, rotated out of the live file, then keyway restarted and a CLI line written while it was stopped: all sent once the receiver is back', async () => {
    const port = await freePort();
    upstream = await startUpstream();
    const long = 'r'.repeat(1500);
    const config = { audit: { max_bytes: '8KiB', keep: 20, export: [{ format: 'cef', to: `syslog+tcp://127.0.0.1:${port}` }] } };
    proxy = await startProxy({ grants: grants(), config });
    let tcp = await tcpReceiver(port);
    receivers.push(tcp);
    await through(proxy, '/echo/before');
    await caughtUp(proxy, tcp);
    await tcp.close();
    // The receiver is down: one marked line, then enough to rotate it out of the live file.
    await through(proxy, '/echo/while-down');
    const marked = await waitFor(() => logLines(proxy!).find((l) => l.path === '/echo/while-down' && l.phase === undefined), 'the marked line');
    for (let i = 0; i < 8; i++) await through(proxy, `/echo/${i}/${long}`);
    expect(
      logLines(proxy).some((l) => l.seq === marked.seq),
      'rotated out of the live file',
    ).toBe(false);
    // keyway stops (the export with it); a CLI change writes its line; keyway starts again, its place in the files lost.
    await proxy.stop();
    const cli = await proxy.cli(['grants', 'set', 'github', '--label', 'while=stopped']);
    expect(cli.code, cli.stderr).toBe(0);
    const cliLine = logLines(proxy).findLast((l) => l.decision === 'admin')!;
    proxy = await startProxy({ home: proxy.home, config });
    tcp = await tcpReceiver(port);
    receivers.push(tcp);
    await untilReceived(tcp, marked.seq, 40_000);
    const seqs = await caughtUp(proxy, tcp);
    expect(seqs[0]).toBeLessThanOrEqual(marked.seq);
    expect(seqs).toContain(cliLine.seq);
    expect((await scrape(proxy)).get(exportSeries('keyway_audit_export_missed_lines', 0, 'cef'))).toBe(0);
  });

  it('carries an anomaly signal to each format (alert: a first use)', async () => {
    const tcp = await tcpReceiver();
    const cef = await tcpReceiver();
    const https = await httpsReceiver(TLS_FIXTURES);
    receivers.push(tcp, cef, https);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: grants(),
      env: { BOT_KEY: 'bot-key' },
      config: {
        agents: { bot: { key: 'env:BOT_KEY', grants: ['github'] } },
        anomaly: { mode: 'alert' },
        audit: {
          export: [
            { format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` },
            { format: 'cef', to: `syslog+tcp://127.0.0.1:${cef.port}` },
            { format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath },
          ],
        },
      },
    });
    await through(proxy, '/echo', 'bot:bot-key');
    // The outcome line is written as the answer ends: it may come just after curl has it.
    const line = await waitFor(() => logLines(proxy!).find((l) => l.path === '/echo' && l.phase === undefined), 'the outcome line');
    expect(line.signal?.map((s) => s.name)).toContain('first_use');
    for (const r of [tcp, cef, https]) await untilReceived(r, line.seq);
    expect(tcp.messages.find((m) => seqOf(m) === line.seq)).toMatch(
      / signal="[^"]*first_use[^"]*" signal_why="first_use: first use of grant github by this agent/,
    );
    expect(cef.messages.find((m) => seqOf(m) === line.seq)).toMatch(
      /flexString1Label=signal flexString1=\S*first_use\S* msg=first_use: first use of grant github by this agent/,
    );
    const event = JSON.parse(https.messages.find((m) => seqOf(m) === line.seq)!) as { unmapped: { signal: unknown } };
    expect(event.unmapped.signal).toEqual(expect.arrayContaining([{ name: 'first_use', why: 'first use of grant github by this agent' }]));
  });
});
