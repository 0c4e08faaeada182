// The sidecar's redirect rules (deploy/transparent: apply.sh, redirect.nft) in a pod network this
// test makes (issue 35; pod-network.ts: the pod's namespace, and one outside it where the API is),
// applied by the Kubernetes manifest's own init container command and environment: keyway runs in
// the pod as the manifest's keyway uid (the one the rules leave alone), the agent as the manifest's
// agent uid, with no proxy variable set. curl, Python requests and Node's fetch reach the granted
// host with the credential injected, though the agent's /etc/hosts points the name elsewhere: keyway
// resolves it itself. Then the ways around: the upstream's own address (no server name), a host no
// grant covers, another port, IPv6, UDP: each refused or dropped, and nothing reaches the upstream
// but what keyway sent; nor can the agent flush the rules. keyway's own connection to the API is left
// alone by the rules' uid exception, or it would be redirected to keyway itself. A name in no hosts
// file is answered by keyway's own DNS answerer (dns_listen); what else port 53 does is
// test/hostile/sidecar-dns.test.ts's. Needs root (network namespaces, nftables); CI runs as root.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/deploy-files.ts';
import { kubernetesRules } from '../helpers/deploy-scenarios.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { applyRules, chownTree, createPodNetwork, OUTSIDE_ADDRESS, type PodNetwork } from '../helpers/pod-network.ts';
import { runnableKeyway } from '../helpers/runnable-copy.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-sidecar`;
// The API is the outside namespace's own address; the agent's hosts file names another, held by nobody.
const UPSTREAM = OUTSIDE_ADDRESS.v4;
const ELSEWHERE = '203.0.113.7';
const rules = kubernetesRules();

describe('the sidecar redirect rules, in a network namespace', () => {
  let network: PodNetwork;
  let work: string;
  let home: string;
  let keyway: ChildProcess;
  let upstream: ChildProcess;
  const upstreamSeen: Array<{ path: string; authorized: boolean }> = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    // The agent's resolver says elsewhere; its nameserver is no one (every name here is in hosts).
    network = createPodNetwork('sidecar', {
      hosts: `127.0.0.1 localhost\n${ELSEWHERE} api.example.test other.example.test\n`,
      resolvConf: 'nameserver 10.253.0.53\n',
    });
    // The rules, as the init container applies them: keyway's uid and listeners' ports its own.
    applyRules(network, rules);

    // Files nobody may read: the CA the agent trusts.
    work = mkdtempSync(join(tmpdir(), 'keyway-sidecar-'));
    chmodSync(work, 0o755);

    // The real API, on the namespace's own address: 200 only with the right token.
    const upstreamScript = join(work, 'upstream.mjs');
    writeFileSync(
      upstreamScript,
      `import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
createServer({ cert: readFileSync(${JSON.stringify(join(REPO, 'test/fixtures/tls/upstream.pem'))}), key: readFileSync(${JSON.stringify(join(REPO, 'test/fixtures/tls/upstream-key.pem'))}) }, (req, res) => {
  const authorized = req.headers.authorization === 'Bearer ' + process.env.TOKEN;
  console.log(JSON.stringify({ path: req.url, authorized }));
  res.writeHead(authorized ? 200 : 401).end(authorized ? 'ok' : 'no');
}).listen(443, ${JSON.stringify(UPSTREAM)}, () => console.log('{"listening":true}'));
`,
    );
    upstream = network.spawnOutside([process.execPath, upstreamScript], { TOKEN });
    let listening = false;
    upstream.stdout!.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n').filter(Boolean)) {
        const parsed = JSON.parse(line) as { listening?: boolean; path?: string; authorized?: boolean };
        if (parsed.listening) listening = true;
        else upstreamSeen.push({ path: parsed.path!, authorized: parsed.authorized! });
      }
    });
    await waitFor(() => listening || undefined, 'the upstream in the namespace');

    home = mkdtempSync(join(tmpdir(), 'keyway-sidecar-home-'));
    mkdirSync(join(home, 'config'));
    writeFileSync(join(home, 'upstream-ca.pem'), readFileSync(TLS_FIXTURES.caPath));
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          listen: '127.0.0.1:18787',
          unmatched: 'deny',
          // A copy in the home: keyway's uid may not reach this checkout (a 0700 clone).
          upstream_ca: ['upstream-ca.pem'],
          hosts: { 'api.example.test': UPSTREAM, 'dns.example.test': UPSTREAM },
          allow_networks: [`${UPSTREAM}/32`],
          transparent: {
            listen: `127.0.0.1:${rules.env['TLS_PORT']}`,
            http_listen: `127.0.0.1:${rules.env['HTTP_PORT']}`,
            dns_listen: `127.0.0.1:${rules.env['DNS_PORT']}`,
            agent: 'app',
          },
        },
        admin: { enabled: false },
        grants: { api: { type: 'bearer', domains: ['api.example.test', 'dns.example.test'], secret: 'env:API_TOKEN' } },
        agents: { app: { key: 'env:APP_KEY', grants: ['api'] } },
      }),
    );
    chownTree(home, rules.keywayUid);
    // From a copy keyway's uid can read wherever this checkout was cloned (helpers/runnable-copy.ts).
    const runnable = runnableKeyway();
    keyway = network.spawn(rules.keywayUid, [runnable.node, runnable.cli, 'start', '--home', home], {
      HOME: home,
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      API_TOKEN: TOKEN,
      APP_KEY: randomBytes(16).toString('hex'),
    });
    let log = '';
    keyway.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    keyway.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(() => (/keyway is listening|listening on/.test(log) ? true : undefined), 'keyway in the namespace', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${log}`);
    });
    outputs.push(log);
    copyFileSync(join(home, 'certs', 'ca.pem'), join(work, 'ca.pem'));
    chmodSync(join(work, 'ca.pem'), 0o644);
  });

  afterAll(async () => {
    keyway?.kill('SIGTERM');
    upstream?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    network?.remove();
    const audit = home ? readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8') : '';
    for (const text of [audit, ...outputs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    for (const dir of [work, home]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A command as the agent: its uid, in the pod, with no proxy variable at all. */
  function asAgent(args: string[], env: Record<string, string> = {}) {
    const r = network.run(rules.agentUid, args, { HOME: '/tmp', ...env });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  const auditLines = () =>
    readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('curl, Python requests and Node fetch reach the API with no proxy setting, and keyway injects the token', async () => {
    const ca = join(work, 'ca.pem');
    const curl = asAgent(['curl', '-sS', '--cacert', ca, 'https://api.example.test/v1/curl']);
    expect(curl.stdout, curl.stderr).toBe('ok');
    const python = asAgent(['python3', '-c', `import requests; print(requests.get('https://api.example.test/v1/python', verify='${ca}').text)`]);
    expect(python.stdout.trim(), python.stderr).toBe('ok');
    const node = asAgent(['/usr/bin/node', '-e', "fetch('https://api.example.test/v1/node').then((r) => r.text()).then(console.log)"], {
      NODE_EXTRA_CA_CERTS: ca,
    });
    expect(node.stdout.trim(), node.stderr).toBe('ok');
    await waitFor(() => (upstreamSeen.length >= 3 ? true : undefined), 'the three requests upstream');
    expect(upstreamSeen).toEqual([
      { path: '/v1/curl', authorized: true },
      { path: '/v1/python', authorized: true },
      { path: '/v1/node', authorized: true },
    ]);
    const lines = await waitFor(() => {
      const found = auditLines().filter((l) => String(l['path']).startsWith('/v1/'));
      return found.length >= 3 ? found : undefined;
    }, 'the audit lines');
    for (const line of lines) expect(line).toMatchObject({ decision: 'inject', agent: 'app', grant: 'api', via: 'transparent' });
  });

  it("a name in no hosts file: the agent's lookup is answered by keyway in the pod, and its connection comes to keyway, injected", async () => {
    const before = upstreamSeen.length;
    const lookup = asAgent(['getent', 'ahostsv4', 'dns.example.test']);
    expect(lookup.stdout.split('\n')[0], lookup.stderr).toMatch(/^198\.18\.0\.1\s/);
    const curl = asAgent(['curl', '-sS', '--cacert', join(work, 'ca.pem'), 'https://dns.example.test/v1/by-name']);
    expect(curl.stdout, curl.stderr).toBe('ok');
    await waitFor(() => (upstreamSeen.length > before ? true : undefined), 'the request upstream');
    expect(upstreamSeen.at(-1)).toEqual({ path: '/v1/by-name', authorized: true });
  });

  it('the ways around lead nowhere: the API by its address, an ungranted host, another port, IPv6, UDP', async () => {
    const before = upstreamSeen.length;
    const ca = join(work, 'ca.pem');
    // The upstream's own address: redirected to keyway, which finds no server name and closes.
    expect(asAgent(['curl', '-sS', '--max-time', '5', '--cacert', ca, `https://${UPSTREAM}/direct`]).code).not.toBe(0);
    // A host no grant covers, with unmatched: deny (a DNS-over-HTTPS resolver would be one): refused (a TLS alert).
    expect(asAgent(['curl', '-sS', '--max-time', '5', '--cacert', ca, 'https://other.example.test/']).code).not.toBe(0);
    // Another TCP port, and IPv6: reset. UDP (QUIC): dropped.
    const probe = asAgent([
      '/usr/bin/node',
      '-e',
      `const net = require('node:net'); const dgram = require('node:dgram');
const tryTcp = (host, port) => new Promise((resolve) => { const s = net.connect({ host, port, timeout: 3000 }); s.on('connect', () => { s.destroy(); resolve('connected'); }); s.on('error', (e) => resolve(e.code)); s.on('timeout', () => { s.destroy(); resolve('timeout'); }); });
(async () => {
  const ssh = await tryTcp('${ELSEWHERE}', 22);
  const v6 = await tryTcp('fd00:253::9', 443);
  const u = dgram.createSocket('udp4'); await new Promise((r) => u.send('quic?', 443, '${ELSEWHERE}', () => r())); u.close();
  console.log(JSON.stringify({ ssh, v6 }));
})();`,
    ]);
    // Refused by the reset (or, where the namespace's reverse-path filter drops the reset, timed out): never connected.
    const reached = JSON.parse(probe.stdout) as { ssh: string; v6: string };
    expect(['ECONNREFUSED', 'timeout'], probe.stderr).toContain(reached.ssh);
    expect(['ECONNREFUSED', 'timeout'], probe.stderr).toContain(reached.v6);
    const leave = network.run(0, ['nft', 'list', 'chain', 'inet', 'keyway', 'leave']).stdout;
    const dropped = Number(/counter packets (\d+) bytes \d+ drop/.exec(leave)?.[1] ?? 0);
    expect(dropped).toBeGreaterThanOrEqual(1);
    // And the agent cannot take the rules down: it holds no capability in the namespace.
    const flush = asAgent(['/usr/sbin/nft', 'flush', 'ruleset']);
    expect(flush.code).not.toBe(0);
    expect(network.run(0, ['nft', 'list', 'tables']).stdout).toContain('inet keyway');
    // Nothing of these reached the API.
    expect(upstreamSeen.length).toBe(before);
    const refusals = await waitFor(() => {
      const found = auditLines().filter((l) => l['decision'] === 'deny' && l['via'] === 'transparent');
      return found.length >= 2 ? found : undefined;
    }, 'the refusals');
    expect(refusals.map((l) => l['code']).sort()).toEqual(['host_not_allowed', 'no_destination']);
  });
});
