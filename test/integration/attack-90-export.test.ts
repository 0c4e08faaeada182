// Attacking audit.export (issue 90, item 4) through the real proxy and loopback receivers: a hostile
// agent plants the grant's secret wherever a request lets it (the query, headers, the purpose, a
// path segment, a held body and a Slack-less approval's deny reason) and writes paths built to break
// framing (quotes, backslashes, brackets, equals signs, pipes, percent-escapes of line breaks). What
// the docs promise (docs/audit.md, Export to a SIEM): only the allow-listed fields leave keyway, the
// path without its query, and no receiver can be made to see a message that is not one of keyway's.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLine } from '../../src/audit/index.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { exchange, openTunnel, startTls } from '../helpers/raw-http.ts';
import { httpsReceiver, type Receiver, tcpReceiver, tlsReceiver, udpReceiver } from '../helpers/siem-receivers.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const GRANT_SECRET = `${CANARY}-attack-export-grant`;
// Not the CANARY's prefix: the audit file keeps the agent's own purpose text, and must still be searchable for the grant's.
const AGENT_SECRET = 'agent-own-value-7f3a9c21e5d4';

describe('attack 90: audit.export', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let tcp: Receiver;
  let tls: Receiver;
  let udp: Receiver;
  let https: Receiver;

  beforeAll(async () => {
    [tcp, tls, udp, https] = await Promise.all([tcpReceiver(), tlsReceiver(TLS_FIXTURES), udpReceiver(), httpsReceiver(TLS_FIXTURES)]);
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: GRANT_SECRET }],
      env: { BOT_KEY: 'bot-key' },
      config: {
        audit: {
          export: [
            { format: 'syslog', to: `syslog+tcp://127.0.0.1:${tcp.port}` },
            { format: 'cef', to: `syslog+tls://localhost:${tls.port}`, ca: TLS_FIXTURES.caPath },
            { format: 'syslog', to: `syslog+udp://127.0.0.1:${udp.port}` },
            { format: 'ocsf', to: `https://localhost:${https.port}/ingest`, ca: TLS_FIXTURES.caPath },
          ],
        },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api'],
            rules: [
              { grant: 'api', methods: ['GET'] },
              { grant: 'api', methods: ['POST'], approve: 'human', approval: { wait: '30s' } },
            ],
          },
        },
      },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    for (const r of [tcp, tls, udp, https]) await r?.close().catch(() => undefined);
  });

  const lines = () =>
    readFileSync(proxy.auditPath, 'utf8')
      .split('\n')
      .filter((t) => t !== '')
      .map((t) => JSON.parse(t) as AuditLine);

  function seqOf(message: string): number {
    const m = /\bseq="(\d+)"/.exec(message) ?? /\bcn1=(\d+)/.exec(message);
    if (m) return Number(m[1]);
    return (JSON.parse(message) as { unmapped: { seq: number } }).unmapped.seq;
  }

  async function via(path: string, extra: string[] = []) {
    return curl(
      [
        '-g',
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-x',
        `http://bot:bot-key@127.0.0.1:${proxy.port}`,
        '--cacert',
        proxy.bundlePath,
        ...extra,
        `https://api.example.test:${upstream.port}${path}`,
      ],
      {},
    );
  }

  async function raw(path: string): Promise<string> {
    const authority = `api.example.test:${upstream.port}`;
    const socket = await startTls(
      await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${Buffer.from('bot:bot-key').toString('base64')}\r\n`),
      'api.example.test',
      readFileSync(proxy.caPath, 'utf8'),
    );
    return exchange(socket, `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
  }

  it('the secrets an agent plants and the paths it shapes reach no receiver as secrets or as forged messages', async () => {
    const b64 = Buffer.from(GRANT_SECRET).toString('base64');
    // The query, headers, the purpose, cookies.
    expect(
      (await via(`/q?token=${GRANT_SECRET}&k=${AGENT_SECRET}`, ['-H', `X-Api-Key: ${GRANT_SECRET}`, '-H', `X-Keyway-Purpose: ${AGENT_SECRET} ${b64}`])).stdout,
    ).toBe('200');
    // Framing: quotes, backslash, brackets, equals, pipes; and an encoded line break (refused, its line has no path).
    for (const path of ['/f/a"b]c=d|e\\f[g', '/f/x%22%5D%20y=1', '/f/%0D%0Ainjected', '/f/%E2%80%A8sep']) await raw(path);
    // A held POST whose body carries the secret, denied with a reason carrying the agent's text.
    const held = via('/held', ['-X', 'POST', '-H', 'content-type: application/json', '--data', JSON.stringify({ note: GRANT_SECRET, b: b64 })]);
    const admin = adminClient(proxy);
    const id = await waitForAsync(async () => {
      const r = await admin.call('GET', '/api/approvals');
      return (r.body as { approvals: Array<{ id: string }> }).approvals[0]?.id;
    }, 'the pending approval');
    expect((await admin.call('POST', `/api/approvals/${id}/deny`, { reason: `] CEF:0|forged|x=1 "\n<13>1 - forged ${AGENT_SECRET}` })).status).toBe(200);
    expect((await held).stdout).toBe('403');

    const head = () => lines().at(-1)!.seq;
    for (const r of [tcp, tls, udp, https]) {
      await waitForAsync(async () => (r.messages.some((m) => seqOf(m) === head()) ? true : undefined), 'the receiver caught up', 20_000);
      const bytes = Buffer.concat(r.bytes);
      for (const secret of [GRANT_SECRET, AGENT_SECRET]) expect(findLeak(bytes, secret), `a secret at ${r.port}`).toBeUndefined();
      expect(bytes.toString('utf8')).not.toMatch(/token=|X-Api-Key|forged/);
      expect(r.malformed).toEqual([]);
      // Each message one of keyway's, each seq once.
      const seqs = r.messages.map(seqOf);
      expect(new Set(seqs).size).toBe(seqs.length);
    }
    // Syslog: one SD element per message, whatever the path said; each value's quotes and brackets escaped.
    for (const m of [...tcp.messages, ...udp.messages]) {
      expect(m).toMatch(/^<\d+>1 \S+ \S+ keyway - \S+ \[keyway@32473 (?:[a-z_]+="(?:[^"\\\]]|\\["\\\]])*" ?)+\] /);
      expect(m).not.toMatch(/[\r\n\u2028]/);
    }
    // CEF: the extension's keys are keyway's own only (an = in a value is escaped, never a new key).
    const keys = new Set(['rt', 'externalId', 'act', 'reason', 'src', 'shost', 'suser', 'requestMethod', 'dhost', 'dpt', 'request', 'msg']);
    for (const m of tls.messages) {
      const extension = m.split('|').slice(7).join('|');
      for (const [, key] of extension.matchAll(/(?:^| )([A-Za-z0-9]+)=/g))
        expect(keys.has(key!) || /^(?:c[sn]\d|flexString\d)(?:Label)?$/.test(key!), `${key} in ${m}`).toBe(true);
      expect(m).not.toMatch(/[\r\n\u2028]/);
    }
  });

  it('a path segment holding the grant’s secret (any form) is redacted on the line, so no receiver gets it; the request goes as written', async () => {
    const hex = Buffer.from(GRANT_SECRET).toString('hex');
    expect((await via(`/p/${GRANT_SECRET}/x`)).stdout).toBe('200');
    expect((await via(`/p/${hex}/y`)).stdout).toBe('200');
    expect(upstream.seen.some((s) => s.url === `/p/${GRANT_SECRET}/x`)).toBe(true);
    // A held one too: the approval's own lines carry the path.
    const held = via(`/held/${GRANT_SECRET}`, ['-X', 'POST', '--data', 'x=1']);
    const admin = adminClient(proxy);
    const id = await waitForAsync(async () => {
      const r = await admin.call('GET', '/api/approvals');
      return (r.body as { approvals: Array<{ id: string; path: string }> }).approvals[0]?.id;
    }, 'the pending approval');
    expect((await admin.call('GET', `/api/approvals`)).text).not.toContain(GRANT_SECRET);
    await admin.call('POST', `/api/approvals/${id}/deny`, {});
    expect((await held).stdout).toBe('403');
    const head = lines().at(-1)!.seq;
    expect(
      lines()
        .filter((l) => l.path?.startsWith('/p/') || l.path?.startsWith('/held/'))
        .map((l) => l.path),
    ).toContain('/p/[redacted by keyway]/x');
    expect(findLeak(readFileSync(proxy.auditPath), GRANT_SECRET)).toBeUndefined();
    for (const r of [tcp, tls, udp, https]) {
      await waitForAsync(async () => (r.messages.some((m) => seqOf(m) === head) ? true : undefined), 'the receiver caught up', 20_000);
      expect(findLeak(Buffer.concat(r.bytes), GRANT_SECRET), `the secret at ${r.port}`).toBeUndefined();
    }
  });
});
