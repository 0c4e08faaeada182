import { chmodSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPythonWithRequests, freePort } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { makeHome, runCli, startProxy, type TestGrant, type TestProxy } from '../helpers/keyway.ts';
import { delta, parseMetrics } from '../helpers/metrics-text.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// `keyway doctor` against a real proxy and real clients (curl, this Node, python3 with requests, git),
// passing on a healthy setup and naming the fault on broken ones. Every request stays on loopback:
// the test host api.example.test is mapped to 127.0.0.1 by the proxy only.

const HOST = 'api.example.test';
const GRANTS: TestGrant[] = [{ id: 'api', type: 'bearer', domains: [HOST], secret: CANARY }];
const AGENT_KEY = 'doctor-agent-key-1';

let upstream: TestUpstream;
let proxy: TestProxy;
let agentProxy: TestProxy;
let adminPort: number;

beforeAll(async () => {
  upstream = await startUpstream();
  adminPort = await freePort();
  proxy = await startProxy({ grants: GRANTS, config: { proxy: { listen: `127.0.0.1:${await freePort()}` }, admin: { listen: `127.0.0.1:${adminPort}` } } });
  agentProxy = await startProxy({
    grants: GRANTS,
    config: { proxy: { listen: `127.0.0.1:${await freePort()}` }, admin: { enabled: false }, agents: { claude: { key: 'env:CLAUDE_KEY' } } },
    env: { CLAUDE_KEY: AGENT_KEY },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await agentProxy?.stop();
  await upstream?.close();
});

const testUrl = () => `https://${HOST}:${upstream.port}/echo`;

interface Check {
  check: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

function byName(checks: Check[], name: string): Check {
  const found = checks.find((c) => c.check === name);
  if (!found) throw new Error(`no check named ${name} in ${JSON.stringify(checks.map((c) => c.check))}`);
  return found;
}

const CLIENT_CHECKS = ['curl', 'node', 'python3 (requests)', 'git'];

/** A copy of the proxy's home, to break without touching the running proxy. */
function copyHome(from: TestProxy): string {
  const home = makeHome();
  cpSync(from.home, home, { recursive: true });
  return home;
}

describe('keyway doctor on a healthy setup', () => {
  it('passes every check, running each client through keyway to a host a grant covers', async () => {
    const seenBefore = upstream.seen.length;
    const r = await proxy.cli(['doctor', '--url', testUrl()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    for (const name of ['CA certificate', 'CA private key', 'CA bundle', 'proxy', 'admin API', `keyway intercepts ${HOST}`, ...CLIENT_CHECKS]) {
      expect(
        lines.find((l) => l.includes(`${name}:`)),
        `${name} in\n${r.stdout}`,
      ).toMatch(/^ok /);
    }
    expect(r.stdout).not.toMatch(/^FAIL/m);
    // The in-process check, curl, node, python and git each sent a request there, with the grant's credential.
    const seen = upstream.seen.slice(seenBefore);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    expect(seen.every((s) => s.headers.authorization === `Bearer ${CANARY}`)).toBe(true);
    expect(seen.some((s) => s.headers['user-agent']?.startsWith('curl/'))).toBe(true);
    expect(seen.some((s) => s.headers['user-agent']?.startsWith('git/'))).toBe(true);
    expect(seen.some((s) => s.headers['user-agent']?.startsWith('python-requests/'))).toBe(true);
    expect(r.stdout).not.toContain(CANARY);
  });

  it('prints the same checks as JSON', async () => {
    const r = await proxy.cli(['doctor', '--json', '--url', testUrl()]);
    expect(r.code, r.stdout).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    expect(result.ok).toBe(true);
    expect(result.checks.map((c) => c.status)).not.toContain('fail');
    expect(byName(result.checks, 'CA private key').detail).toContain('mode 0600');
    expect(byName(result.checks, 'curl')).toMatchObject({ status: 'ok', detail: expect.stringContaining('trusts its CA') });
  });

  it('goes through the proxy as an agent with --agent, and says to use it when the proxy asks for one', async () => {
    const without = await agentProxy.cli(['doctor', '--json', '--url', testUrl()]);
    expect(without.code).toBe(1);
    const failed = JSON.parse(without.stdout) as { checks: Check[] };
    expect(byName(failed.checks, `keyway intercepts ${HOST}`)).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('407'),
      fix: expect.stringContaining('--agent'),
    });
    expect(byName(failed.checks, 'admin API')).toMatchObject({ status: 'skip' });

    const r = await agentProxy.cli(['doctor', '--json', '--agent', 'claude', '--url', testUrl()]);
    expect(r.code, r.stdout).toBe(0);
    const result = JSON.parse(r.stdout) as { checks: Check[] };
    for (const name of CLIENT_CHECKS) expect(byName(result.checks, name).status).toBe('ok');
    // The agent's key is in the proxy URL the clients got, but never in what doctor prints.
    expect(without.stdout + r.stdout + r.stderr).not.toContain(AGENT_KEY);
  });

  it("passes on keyway's own answer (keyway.internal), with no --url and no upstream", async () => {
    const seenBefore = upstream.seen.length;
    const admin = adminClient(proxy);
    const scrape = async () => parseMetrics((await admin.call('GET', '/metrics')).text);
    const refused = async () => (JSON.parse((await proxy.cli(['status', '--json'])).stdout) as { refused: number }).refused;
    const [metricsBefore, refusedBefore] = [await scrape(), await refused()];
    const selfChecksBefore = proxy.auditLines().filter((l) => l['host'] === 'keyway.internal').length;
    const r = await proxy.cli(['doctor', '--json']);
    const result = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    expect(byName(result.checks, 'keyway answers through the proxy (keyway.internal)')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('as agent local'),
    });
    for (const name of CLIENT_CHECKS) expect(byName(result.checks, name), name).toMatchObject({ status: 'ok' });
    expect(r.code, r.stdout).toBe(0);
    expect(upstream.seen.length).toBe(seenBefore); // keyway answered itself: nothing was forwarded
    // A self-check is not a refusal: not counted as one in /metrics, `keyway status` or the overview.
    const metricsAfter = await scrape();
    const counted = delta(metricsBefore, metricsAfter, 'keyway_requests_total', { decision: 'self_check', code: 'self_check' });
    expect(counted).toBeGreaterThan(0);
    // The line is committed when keyway's answer closes, which can be after doctor has read it and
    // exited; the file may show it a moment after /metrics counted it.
    const selfCheckLines = () =>
      proxy
        .auditLines()
        .filter((l) => l['host'] === 'keyway.internal')
        .slice(selfChecksBefore);
    for (const deadline = Date.now() + 5_000; selfCheckLines().length < counted && Date.now() < deadline; ) await sleep(50);
    const selfChecks = selfCheckLines();
    expect(selfChecks.length).toBe(counted);
    expect(selfChecks.every((l) => l['decision'] === 'self_check' && l['code'] === 'self_check' && l['grant'] === null)).toBe(true);
    expect(delta(metricsBefore, metricsAfter, 'keyway_requests_total', { decision: 'deny', code: 'self_check' })).toBe(0);
    expect(await refused()).toBe(refusedBefore);
    const overview = (await admin.call('GET', '/api/overview')).text;
    expect(overview).not.toContain('self_check');
  });
});

describe('keyway doctor on a broken setup', () => {
  it('names a missing CA certificate, and says how to fix it', async () => {
    const home = copyHome(proxy);
    try {
      rmSync(join(home, 'certs', 'ca.pem'));
      const r = await runCli(['doctor', '--url', testUrl()], { KEYWAY_HOME: home, ...proxy.env });
      expect(r.code).toBe(1);
      const line = r.stdout.split('\n').find((l) => l.includes('CA certificate:'));
      expect(line).toMatch(/^FAIL +CA certificate: .*certs\/ca\.pem is missing -> restore certs\/ca\.pem from a backup/);
      // The proxy itself still answers; what needs the CA is not run.
      expect(r.stdout).toMatch(/^ok +proxy: answers at 127\.0\.0\.1:\d+$/m);
      for (const name of CLIENT_CHECKS)
        expect(r.stdout).toMatch(new RegExp(`^skip +${name.replace(/[()]/g, '\\$&')}: not run: needs a working certs/ca\\.pem$`, 'm'));
      expect(r.stderr).toContain('check(s) failed');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('names a proxy that does not answer', async () => {
    const closed = await freePort();
    const r = await proxy.cli(['doctor', '--proxy', `127.0.0.1:${closed}`, '--url', testUrl()]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^FAIL +proxy: nothing answers at 127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\) -> start keyway`, 'm'));
    expect(r.stdout).toMatch(/^ok +CA certificate:/m);
    expect(r.stdout).toMatch(/^skip +curl: not run: needs the proxy to answer$/m);
  });

  // These two break the running proxy's own home (and put it back): doctor confirms each client's
  // request in that home's audit log, which a copy of the home would not see.
  it('names a CA key readable by others', async () => {
    const key = join(proxy.home, 'certs', 'ca-key.pem');
    try {
      chmodSync(key, 0o644);
      const r = await proxy.cli(['doctor', '--url', testUrl()]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^FAIL +CA private key: .*ca-key\.pem has mode 0644.* -> chmod 600 /m);
      expect(r.stdout.match(/^FAIL/gm)).toHaveLength(1);
    } finally {
      chmodSync(key, 0o600);
    }
  });

  it("names a bundle without keyway's CA, and the clients that then refuse keyway's certificate", async () => {
    const bundle = join(proxy.home, 'certs', 'bundle.pem');
    const original = readFileSync(bundle);
    try {
      // The bundle keeps only the upstream test CA: keyway's CA is gone from it.
      writeFileSync(bundle, readFileSync(join(import.meta.dirname, '../fixtures/tls/upstream-ca.pem')));
      const r = await proxy.cli(['doctor', '--json', '--url', testUrl()]);
      expect(r.code).toBe(1);
      const { checks } = JSON.parse(r.stdout) as { checks: Check[] };
      expect(byName(checks, 'CA bundle')).toMatchObject({ status: 'fail', detail: expect.stringContaining("does not hold keyway's CA") });
      // curl, python and git read the bundle; Node adds certs/ca.pem to its own roots.
      expect(byName(checks, 'curl')).toMatchObject({
        status: 'fail',
        detail: expect.stringContaining('curl: (60)'),
        fix: expect.stringContaining("does not trust keyway's CA"),
      });
      expect(byName(checks, 'git')).toMatchObject({ status: 'fail', fix: expect.stringContaining('GIT_SSL_CAINFO') });
      if (await findPythonWithRequests())
        expect(byName(checks, 'python3 (requests)')).toMatchObject({ status: 'fail', fix: expect.stringContaining('REQUESTS_CA_BUNDLE') });
      expect(byName(checks, 'node').status).toBe('ok');
    } finally {
      writeFileSync(bundle, original);
    }
  });

  it('fails a --url host that keyway only tunnels, as not intercepted', async () => {
    const r = await proxy.cli(['doctor', '--json', '--url', `https://tunnel.example.test:${upstream.port}/echo`]);
    expect(r.code).toBe(1);
    const { checks } = JSON.parse(r.stdout) as { checks: Check[] };
    expect(byName(checks, 'keyway intercepts tunnel.example.test')).toMatchObject({ status: 'fail', fix: expect.stringContaining('add a grant covering it') });
  });
});

describe('keyway doctor --url where keyway refuses the agent (issue 48)', () => {
  let refusing: TestProxy;
  beforeAll(async () => {
    // The agent may only POST: doctor's GETs are refused inside TLS with a 403 and X-Keyway-Error.
    refusing = await startProxy({
      grants: GRANTS,
      config: {
        proxy: { listen: `127.0.0.1:${await freePort()}` },
        admin: { enabled: false },
        agents: { claude: { key: 'env:CLAUDE_KEY', rules: [{ grant: 'api', methods: ['POST'] }] } },
      },
      env: { CLAUDE_KEY: AGENT_KEY },
    });
  });
  afterAll(async () => {
    await refusing?.stop();
  });

  it('reports FAIL with the code, not ok for the 403 keyway answered', async () => {
    const r = await refusing.cli(['doctor', '--json', '--agent', 'claude', '--url', testUrl()]);
    const result = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    const curl = byName(result.checks, 'curl');
    expect(curl.status).toBe('fail');
    expect(curl.detail).toMatch(/keyway refused the request to api\.example\.test \(HTTP 403, policy_denied/);
    expect(curl.fix).toContain('policy_denied');
    expect(r.code).not.toBe(0);
  });
});
