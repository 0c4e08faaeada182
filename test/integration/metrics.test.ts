// /metrics on the admin listener, scraped after real traffic: a real proxy, real clients (undici's
// ProxyAgent), a real HTTPS upstream and a real authorization server (oidc-provider) on loopback.
// The counters move by exactly what was sent; nothing an agent chooses (host, path, query, agent
// id it claims) becomes a label; no secret ever shows in the text; and the route needs the token.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { delta, parseMetrics, seriesKey, type Series } from '../helpers/metrics-text.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

const GITHUB_SECRET = `${CANARY}-github`;
const AGENT_KEY = `${CANARY}-agent-key`;
const QUERY_SECRET = `${CANARY}-in-a-query`;

describe('/metrics after real traffic', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let plain: TestUpstream;
  let proxy: TestProxy;
  let claude: ProxyAgent;
  let adminToken: string;
  let adminBase: string;
  let ca: string;
  const opened: ProxyAgent[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      handler: (req, res) => {
        if (req.url !== '/leak') return false;
        // A debug endpoint that echoes the credential it received: the leak guard redacts it.
        const text = JSON.stringify({ you_sent: req.headers.authorization ?? '' });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return true;
      },
    });
    plain = await startUpstream({ tls: 'plain' });
    const testauth = { token_url: auth.tokenUrl, client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET' };
    proxy = await startProxy({
      grants: [
        { id: 'github', type: 'bearer', domains: ['api.example.test'], secret: GITHUB_SECRET },
        {
          id: 'machine',
          type: 'client_credentials',
          domains: ['other.example.test'],
          provider: 'testauth',
          secret: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
        },
        {
          id: 'broken',
          type: 'client_credentials',
          domains: ['bad.example.test'],
          provider: 'testauth',
          secret: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
        },
      ],
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET, CLAUDE_KEY: AGENT_KEY },
      // Every other name (the unmatched hosts below) resolves to loopback too.
      dns: async () => ({ address: '127.0.0.1', family: 4 }),
      config: {
        // Each request is counted by its audit line here (auditSettled): none folded into a summary.
        audit: { refusal_budget: 10_000 },
        providers: { testauth },
        agents: {
          claude: {
            key: 'env:CLAUDE_KEY',
            grants: ['github', 'machine', 'broken'],
            rules: [
              { grant: 'github', methods: ['GET'] },
              { grant: 'github', deny: true, paths: ['/repos/secret/**'] },
              { grant: 'machine', methods: ['GET'] },
              { grant: 'broken', methods: ['GET'] },
            ],
          },
        },
      },
    });
    ca = readFileSync(proxy.caPath, 'utf8');
    claude = agentClient('claude', AGENT_KEY);
    adminToken = readFileSync(proxy.running.services.paths.adminToken, 'utf8').trim();
    adminBase = `http://127.0.0.1:${proxy.running.adminAddress!.port}`;
  });
  afterAll(async () => {
    await Promise.all(opened.map((a) => a.close()));
    await proxy?.stop();
    await upstream?.close();
    await plain?.close();
    await auth?.close();
  });

  function agentClient(id: string, key: string): ProxyAgent {
    const agent = new ProxyAgent({ uri: `http://${id}:${encodeURIComponent(key)}@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    opened.push(agent);
    return agent;
  }

  async function get(url: string, dispatcher: ProxyAgent = claude): Promise<number> {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
    await res.body.text();
    return res.statusCode;
  }

  async function scrapeText(
    headers: Record<string, string> = { authorization: `Bearer ${adminToken}` },
  ): Promise<{ status: number; type: string; text: string }> {
    const res = await request(`${adminBase}/metrics`, { headers, signal: AbortSignal.timeout(slack(10_000)) });
    return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() };
  }

  async function scrape(): Promise<Series> {
    const { status, text } = await scrapeText();
    expect(status).toBe(200);
    return parseMetrics(text);
  }

  /** Each request is counted when its audit line is committed, just after the client has its answer. */
  async function auditSettled(count: number): Promise<void> {
    await waitFor(() => (proxy.auditLines().length >= count ? true : undefined), `${count} audit lines`);
  }

  it('counts each request by decision and code, and by grant and agent, by exactly what was sent', async () => {
    const before = await scrape();
    const linesBefore = proxy.auditLines().length;
    const api = `https://api.example.test:${upstream.port}`;
    for (let i = 0; i < 5; i++) expect(await get(`${api}/repos/o/r${i}?access_token=${QUERY_SECRET}`)).toBe(200);
    for (let i = 0; i < 2; i++) expect(await get(`${api}/repos/secret/s${i}`)).toBe(403);
    expect(await get(`${api}/leak`)).toBe(200);
    // A wrong agent key: refused at CONNECT (407), before any agent is known.
    const intruder = agentClient('claude', 'not-the-key');
    for (let i = 0; i < 3; i++) await expect(get(`${api}/repos/o/r`, intruder)).rejects.toThrow();
    expect(await get(`https://other.example.test:${upstream.port}/echo`)).toBe(200);
    auth.mode = 'error500';
    try {
      expect(await get(`https://bad.example.test:${upstream.port}/echo`)).toBe(502);
    } finally {
      auth.mode = 'normal';
    }
    await auditSettled(linesBefore + 13);
    const after = await scrape();
    const d = (name: string, labels: Record<string, string> = {}) => delta(before, after, name, labels);

    expect(d('keyway_requests_total', { decision: 'inject', code: 'none' })).toBe(7);
    expect(d('keyway_requests_total', { decision: 'deny', code: 'policy_denied' })).toBe(2);
    expect(d('keyway_requests_total', { decision: 'deny', code: 'proxy_auth_required' })).toBe(3);
    expect(d('keyway_requests_total', { decision: 'error', code: 'token_refresh_failed' })).toBe(1);
    expect(d('keyway_grant_requests_total', { grant: 'github', agent: 'claude', decision: 'inject' })).toBe(6);
    expect(d('keyway_grant_requests_total', { grant: 'github', agent: 'claude', decision: 'deny' })).toBe(2);
    expect(d('keyway_grant_requests_total', { grant: 'machine', agent: 'claude', decision: 'inject' })).toBe(1);
    expect(d('keyway_grant_requests_total', { grant: 'broken', agent: 'claude', decision: 'error' })).toBe(1);
    // The three intruders at least (a loaded machine may add a refusal of its own, such as a client's
    // connection timed out with no agent known: named in the message if so).
    const anonymousDenials = () =>
      proxy
        .auditLines()
        .slice(linesBefore)
        .filter((l) => l['decision'] === 'deny' && l['agent'] === null)
        .map((l) => l['code']);
    expect(d('keyway_grant_requests_total', { grant: '_none', agent: '_none', decision: 'deny' }), String(anonymousDenials())).toBeGreaterThanOrEqual(3);
    expect(anonymousDenials().filter((c) => c === 'proxy_auth_required')).toHaveLength(3);
    expect(d('keyway_policy_denials_total', { grant: 'github', agent: 'claude', outcome: 'denied' })).toBe(2);
    // The same count the audit lines give (the upstream's echoes carried the secret back).
    const newLines = proxy.auditLines().slice(linesBefore);
    const redacted = (grant: string) =>
      newLines.filter((l) => l['grant'] === grant).reduce((sum, l) => sum + (typeof l['leak_redacted'] === 'number' ? l['leak_redacted'] : 0), 0);
    expect(newLines.find((l) => l['path'] === '/leak')?.['leak_redacted']).toBeGreaterThan(0);
    expect(redacted('machine')).toBeGreaterThan(0);
    expect(d('keyway_leak_redactions_total', { grant: 'github' })).toBe(redacted('github'));
    expect(d('keyway_leak_redactions_total', { grant: 'machine' })).toBe(redacted('machine'));
    // Seven requests reached the upstream and got a response head.
    expect(d('keyway_upstream_response_seconds_count')).toBe(7);
    expect(d('keyway_upstream_response_seconds_bucket', { le: '+Inf' })).toBe(7);
    // Token endpoint: one client_credentials call answered, one failed with HTTP 500.
    expect(d('keyway_token_requests_total', { grant: 'machine', result: 'ok' })).toBe(1);
    expect(d('keyway_token_requests_total', { grant: 'broken', result: 'server_error' })).toBe(1);
    expect(d('keyway_token_request_seconds_count', { grant: 'machine' })).toBe(1);
    expect(d('keyway_token_request_seconds_count', { grant: 'broken' })).toBe(1);
    expect(d('keyway_token_refreshes_total', { grant: 'machine' })).toBe(1);
    expect(d('keyway_token_refreshes_total', { grant: 'broken' })).toBe(0);
    // One leaf minted per intercepted host; the intruder's refused CONNECTs minted nothing.
    expect(d('keyway_certificate_mints_total')).toBe(3);
    expect(after.get(seriesKey('keyway_certificate_cache_size', { tier: 'leaves' }))).toBe(3);
    // Audit lines were appended, in batches that were timed.
    expect(d('keyway_audit_write_seconds_count', { result: 'ok' })).toBeGreaterThan(0);
    expect(d('keyway_audit_write_seconds_count', { result: 'failed' })).toBe(0);
    expect(after.has('keyway_audit_queue_lines')).toBe(true);
  });

  it('counts certificate cache hits on a new connection to a host already minted', async () => {
    const before = await scrape();
    expect(await get(`https://api.example.test:${upstream.port}/echo`, agentClient('claude', AGENT_KEY))).toBe(200);
    const after = await scrape();
    expect(delta(before, after, 'keyway_certificate_mints_total')).toBe(0);
    expect(delta(before, after, 'keyway_certificate_cache_hits_total')).toBe(1);
  });

  it('shows the connections the proxy holds open', async () => {
    const open = async () => (await scrape()).get('keyway_open_connections') ?? Number.NaN;
    const base = await open();
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) sockets.push(connect({ host: '127.0.0.1', port: proxy.port }));
      let seen = base;
      for (let tries = 0; tries < 100 && seen !== base + 3; tries++) {
        await new Promise((r) => setTimeout(r, 20));
        seen = await open();
      }
      expect(seen).toBe(base + 3);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it("reports the process's memory, heap, descriptors and CPU (prom-client's defaults) beside its own", async () => {
    const metrics = await scrape();
    expect(metrics.get('process_resident_memory_bytes')).toBeGreaterThan(16 * 1024 * 1024);
    expect(metrics.get('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(metrics.get('process_open_fds')).toBeGreaterThan(0);
    expect(metrics.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(metrics.get(seriesKey('nodejs_heap_space_size_used_bytes', { space: 'old' }))).toBeGreaterThan(0);
  });

  // 1,070 requests: ~2 s on a quiet machine, 11 s seen with the 2 cores shared by five test runs.
  it('keeps its labels bounded when an agent sends 1000 distinct host names and paths, and 50 made-up agent ids', { timeout: 90_000 }, async () => {
    const before = await scrape();
    const linesBefore = proxy.auditLines().length;
    // Plain http:// through the proxy (absolute-form): no grant covers these, so they pass untouched.
    const urls = Array.from({ length: 1000 }, (_, i) => `http://h${i}-unmatched.example.test:${plain.port}/p${i}/deep/path-${i}?q=${QUERY_SECRET}-${i}`);
    for (let i = 0; i < urls.length; i += 25) {
      const statuses = await Promise.all(urls.slice(i, i + 25).map((url) => get(url)));
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    // From one address: 407 five times in a row, then 429 rate_limited (proxy/identify/throttle.ts).
    for (let i = 0; i < 50; i++) {
      const answer = get(`http://plain.example.test:${plain.port}/echo`, agentClient(`made-up-${i}`, 'whatever'));
      if (i < 5) await expect(answer).rejects.toThrow('407');
      else expect(await answer).toBe(429);
    }
    // A grant name the agent makes up in X-Keyway-Grant is refused, and never becomes a label either.
    for (let i = 0; i < 20; i++) {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: claude, headers: { 'x-keyway-grant': `made-up-grant-${i}` } });
      await res.body.text();
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
    }
    await auditSettled(linesBefore + 1070);
    const { text } = await scrapeText();
    const after = parseMetrics(text);
    expect(delta(before, after, 'keyway_requests_total', { decision: 'tunnel', code: 'none' })).toBe(1000);
    expect(delta(before, after, 'keyway_grant_requests_total', { grant: '_none', agent: 'claude', decision: 'tunnel' })).toBe(1000);
    // The 50 made-up agents at least (a loaded machine may add a refusal of its own, named in the message if so).
    const anonymous = proxy
      .auditLines()
      .slice(linesBefore)
      .filter((l) => l['decision'] === 'deny' && l['agent'] === null)
      .map((l) => String(l['code']));
    expect(
      delta(before, after, 'keyway_grant_requests_total', { grant: '_none', agent: '_none', decision: 'deny' }),
      anonymous.join(','),
    ).toBeGreaterThanOrEqual(50);
    expect(anonymous.filter((c) => c === 'proxy_auth_required' || c === 'rate_limited')).toHaveLength(50);
    // At most the few series those kinds of request opened (tunnel, and the refusal's code); none per host, path, claimed agent or grant.
    // (prom-client's process/nodejs series may appear meanwhile too: a first major GC opens its buckets.)
    const addedSeries = [...after.keys()].filter((k) => !before.has(k));
    const added = addedSeries.filter((k) => k.startsWith('keyway_'));
    // (rate_limited among them: the made-up agents' failures past five in a row are answered 429.)
    // (Each grant_requests_total series has its root_agent_requests_total twin: the agent is its own root.)
    expect(added.length).toBeLessThanOrEqual(10);
    for (const key of added) expect(key).toMatch(/^keyway_(requests_total|grant_requests_total|root_agent_requests_total)\{/);
    for (const key of addedSeries) expect(key).toMatch(/^(keyway|nodejs|process)_/);
    expect(text).not.toMatch(/unmatched|made-up|deep|path-|\/p\d+/);
  });

  it('never shows a secret, a token, a host, a path or a query string', async () => {
    const { text } = await scrapeText();
    for (const secret of [GITHUB_SECRET, AGENT_KEY, QUERY_SECRET, CLIENT_SECRET, adminToken, CANARY]) expect(findLeak(text, secret), secret).toBeUndefined();
    expect(text).not.toContain('example.test');
    expect(text).not.toContain('/repos');
    expect(text).not.toContain('?');
    expect(text).not.toContain('access_token');
  });

  it('refuses /metrics without the admin token, with a wrong one, and from a foreign Host; takes Bearer or X-API-Key', async () => {
    const none = await scrapeText({});
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text).error.code).toBe('admin_auth_required');
    expect(none.text).not.toContain('keyway_');
    expect((await scrapeText({ authorization: 'Bearer not-the-token' })).status).toBe(401);
    expect((await scrapeText({ authorization: `Bearer ${adminToken}x` })).status).toBe(401);
    expect((await scrapeText({ 'x-api-key': adminToken })).status).toBe(200);
    const ok = await scrapeText();
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.text).toContain('# TYPE keyway_requests_total counter');
    const foreign = await scrapeText({ authorization: `Bearer ${adminToken}`, host: `rebind.example:${proxy.running.adminAddress!.port}` });
    expect(foreign.status).toBe(403);
    expect(foreign.text).not.toContain('keyway_');
  });
});
