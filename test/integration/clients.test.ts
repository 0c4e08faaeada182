import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canaryLeaks,
  curl,
  findPythonWithRequests,
  freePort,
  git,
  GIT_REF_SHA,
  gitHandler,
  nodeFetch,
  parseClientEcho,
  pythonRequests,
  rawConnect,
  seenWithTag,
  waitFor,
  type Echo,
} from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestGrant, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

// Real clients through the real proxy, each in a clean environment (PATH + HOME + exactly the
// variables under test). The grant's secret is the CANARY: the upstream must see it as the
// Authorization, and it must show up in no client output (the upstream's echo of it is redacted by
// keyway's leak guard), app log or audit line.

const HOST = 'api.example.test';
const CLIENT_AUTH = 'Bearer client-own-token';
const GRANTS: TestGrant[] = [{ id: 'github', type: 'bearer', domains: [HOST], secret: CANARY }];
const AGENT_KEY = 'agent-key-1';

let upstream: TestUpstream;
/** No agents: the anonymous loopback agent. Listens on a fixed port so that `keyway env` can print it. */
let proxy: TestProxy;
/** One config agent, claude, whose key is agent-key-1. */
let agentProxy: TestProxy;

beforeAll(async () => {
  upstream = await startUpstream({ handler: gitHandler });
  proxy = await startProxy({ grants: GRANTS, config: { proxy: { listen: `127.0.0.1:${await freePort()}` } } });
  agentProxy = await startProxy({
    grants: GRANTS,
    config: { proxy: { listen: `127.0.0.1:${await freePort()}` }, agents: { claude: { key: 'env:CLAUDE_KEY' } } },
    env: { CLAUDE_KEY: AGENT_KEY },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await agentProxy?.stop();
  await upstream?.close();
});

const urlFor = (tag: string, path = '/echo') => `https://${HOST}:${upstream.port}${path}?tag=${tag}`;
const agentUrl = (key: string | undefined) => `http://${key === undefined ? '' : `claude:${encodeURIComponent(key)}@`}127.0.0.1:${agentProxy.port}`;

/**
 * The upstream got the grant's credential, not the client's, and never the proxy credentials.
 * The client sees the upstream's echo of it with the secret redacted by keyway's leak guard.
 */
function expectInjected(tag: string, echo?: Echo): void {
  const seen = seenWithTag(upstream, tag);
  expect(seen.headers.authorization).toBe(`Bearer ${CANARY}`);
  expect(seen.headers['proxy-authorization']).toBeUndefined();
  if (echo) {
    expect(echo.path).toBe(`/echo?tag=${tag}`);
    expect(echo.headers.authorization).toBe('Bearer [redacted by keyway]');
    expect(echo.headers['proxy-authorization']).toBeUndefined();
    expect(JSON.stringify(echo)).not.toContain(CANARY);
  }
}

function expectNoLeak(p: TestProxy, ...clientOutputs: string[]): void {
  expect(canaryLeaks(p, ...clientOutputs)).toEqual([]);
}

describe('curl', () => {
  it('injects on an allowed host through HTTPS_PROXY + CURL_CA_BUNDLE, replacing the Authorization it sent', async () => {
    const auditBefore = proxy.auditLines().length;
    const r = await curl(
      ['--fail-with-body', '-H', `Authorization: ${CLIENT_AUTH}`, urlFor('curl-env')],
      cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const echo = JSON.parse(r.stdout) as Echo;
    expectInjected('curl-env', echo);
    expect(JSON.stringify(upstream.seen)).not.toContain('client-own-token');
    // The echo carried the secret once: the audit line counts that one redaction.
    const redacted = (l: Record<string, unknown>) => l['decision'] === 'inject' && l['path'] === '/echo' && l['leak_redacted'] === 1;
    expect(await waitFor(() => proxy.auditLines().slice(auditBefore).some(redacted))).toBe(true);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });

  it('injects through -x with --cacert and no proxy variables at all', async () => {
    const r = await curl(['--fail-with-body', '-x', proxy.url, '--cacert', proxy.bundlePath, urlFor('curl-x')], cleanEnv());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectInjected('curl-x', JSON.parse(r.stdout) as Echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });

  it('replaces a client-sent Authorization through -x + CURL_CA_BUNDLE as well', async () => {
    const r = await curl(
      ['--fail-with-body', '-x', proxy.url, '-H', `Authorization: ${CLIENT_AUTH}`, urlFor('curl-x-auth')],
      cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(r.code).toBe(0);
    expectInjected('curl-x-auth', JSON.parse(r.stdout) as Echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });
});

describe('Node 24 fetch (child process, NODE_USE_ENV_PROXY=1)', () => {
  it('injects and replaces the client Authorization, trusting keyway through NODE_EXTRA_CA_CERTS', async () => {
    const r = await nodeFetch(
      urlFor('node-fetch'),
      cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: proxy.caPath }),
      CLIENT_AUTH,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { status, echo } = parseClientEcho(r.stdout);
    expect(status).toBe(200);
    expectInjected('node-fetch', echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });
});

describe('undici ProxyAgent (in-process)', () => {
  it('injects on consecutive requests through one ProxyAgent, replacing the client Authorization', async () => {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      for (const tag of ['undici-1', 'undici-2']) {
        // Fresh headers per request: ProxyAgent writes `host` into the object it is given.
        const res = await request(urlFor(tag), { dispatcher, headers: { authorization: CLIENT_AUTH }, signal: AbortSignal.timeout(slack(10_000)) });
        expect(res.statusCode).toBe(200);
        expectInjected(tag, (await res.body.json()) as Echo);
      }
    } finally {
      await dispatcher.close();
    }
    expectNoLeak(proxy);
  });
});

describe('Python requests', () => {
  it('finds a python3 with requests (CI installs python3-requests)', async () => {
    const python = await findPythonWithRequests();
    expect(python, 'no python3 that can `import requests` (tried python3 on PATH, /usr/bin/python3): install python3-requests').toBeTruthy();
  });

  it('injects and replaces the client Authorization through HTTPS_PROXY + REQUESTS_CA_BUNDLE', async () => {
    const r = await pythonRequests(urlFor('python'), cleanEnv({ HTTPS_PROXY: proxy.url, REQUESTS_CA_BUNDLE: proxy.bundlePath }), CLIENT_AUTH);
    // stderr is not required to be empty: distributions' requests may warn about urllib3 versions.
    expect(r.code, r.stderr).toBe(0);
    const { status, echo } = parseClientEcho(r.stdout);
    expect(status).toBe(200);
    expectInjected('python', echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });
});

describe('`keyway env` output used verbatim as the environment', () => {
  let vars: Record<string, string>;
  let agentVars: Record<string, string>;

  beforeAll(async () => {
    const plain = await proxy.cli(['env', '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    vars = JSON.parse(plain.stdout) as Record<string, string>;
    const withAgent = await agentProxy.cli(['env', '--json', '--agent', 'claude']);
    expect(withAgent.code, withAgent.stderr).toBe(0);
    agentVars = JSON.parse(withAgent.stdout) as Record<string, string>;
  });

  it('points at the running proxy and at its CA files', () => {
    expect(vars['HTTPS_PROXY']).toBe(proxy.url);
    expect(vars['NODE_EXTRA_CA_CERTS']).toBe(proxy.caPath);
    for (const name of ['CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE', 'GIT_SSL_CAINFO']) expect(vars[name]).toBe(proxy.bundlePath);
    expect(agentVars['HTTPS_PROXY']).toBe(agentUrl(AGENT_KEY));
  });

  it('is enough for curl', async () => {
    const r = await curl(['--fail-with-body', '-H', `Authorization: ${CLIENT_AUTH}`, urlFor('env-curl')], cleanEnv(vars));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectInjected('env-curl', JSON.parse(r.stdout) as Echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });

  it('is enough for Node fetch', async () => {
    const r = await nodeFetch(urlFor('env-node'), cleanEnv(vars), CLIENT_AUTH);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectInjected('env-node', parseClientEcho(r.stdout).echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });

  it('is enough for Python requests', async () => {
    const r = await pythonRequests(urlFor('env-python'), cleanEnv(vars), CLIENT_AUTH);
    expect(r.code, r.stderr).toBe(0);
    expectInjected('env-python', parseClientEcho(r.stdout).echo);
    expectNoLeak(proxy, r.stderr, r.stdout);
  });

  it('with --agent, is enough for curl, Node, Python and git against a proxy that requires agents', async () => {
    const env = cleanEnv(agentVars);
    const c = await curl(['--fail-with-body', urlFor('env-agent-curl')], env);
    expect(c.code, c.stderr).toBe(0);
    expectInjected('env-agent-curl', JSON.parse(c.stdout) as Echo);
    const n = await nodeFetch(urlFor('env-agent-node'), env);
    expect(n.code, n.stderr).toBe(0);
    expectInjected('env-agent-node', parseClientEcho(n.stdout).echo);
    const p = await pythonRequests(urlFor('env-agent-python'), env);
    expect(p.code, p.stderr).toBe(0);
    expectInjected('env-agent-python', parseClientEcho(p.stdout).echo);
    const before = refsRequests().length;
    const g = await git(['ls-remote', `https://${HOST}:${upstream.port}/repo.git`], env);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toContain(`${GIT_REF_SHA}\trefs/heads/main`);
    const refs = refsRequests().slice(before);
    expect(refs.length).toBeGreaterThan(0);
    for (const seen of refs) {
      expect(seen.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(seen.headers['proxy-authorization']).toBeUndefined();
    }
    expectNoLeak(agentProxy, c.stderr, c.stdout, n.stderr, n.stdout, p.stderr, p.stdout, g.stderr, g.stdout);
  });
});

describe('agents (proxy credentials)', () => {
  it('answers 407 with Proxy-Authenticate: Basic to curl without credentials, and sends nothing upstream', async () => {
    const auditBefore = agentProxy.auditLines().length;
    const r = await curl(['-v', urlFor('agent-none')], cleanEnv({ HTTPS_PROXY: agentUrl(undefined), CURL_CA_BUNDLE: agentProxy.bundlePath }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^< HTTP\/1\.1 407/m);
    expect(r.stderr).toMatch(/^< proxy-authenticate: Basic/im);
    expect(r.stderr).toMatch(/^< x-keyway-error: proxy_auth_required/im);
    expect(upstream.seen.some((s) => s.url.includes('tag=agent-none'))).toBe(false);
    expect(
      await waitFor(() =>
        agentProxy
          .auditLines()
          .slice(auditBefore)
          .some((l) => l['code'] === 'proxy_auth_required' && l['decision'] === 'deny'),
      ),
    ).toBe(true);
    expectNoLeak(agentProxy, r.stderr, r.stdout);
  });

  it('answers a raw CONNECT without credentials with the documented error body', async () => {
    const answer = await rawConnect(agentProxy.port, `${HOST}:${upstream.port}`);
    expect(answer.status).toBe(407);
    expect(answer.headers.get('proxy-authenticate')).toMatch(/^Basic\b/);
    expect(answer.headers.get('x-keyway-error')).toBe('proxy_auth_required');
    const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('proxy_auth_required');
    expect(answer.body).not.toContain(CANARY);
  });

  it('refuses a wrong agent key with 407 (curl, which sends the credentials up front)', async () => {
    const r = await curl(['-v', urlFor('agent-wrong')], cleanEnv({ HTTPS_PROXY: agentUrl('agent-key-2'), CURL_CA_BUNDLE: agentProxy.bundlePath }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^> Proxy-Authorization: Basic/m);
    expect(r.stderr).toMatch(/^< HTTP\/1\.1 407/m);
    expect(r.stderr).toMatch(/^< x-keyway-error: proxy_auth_required/im);
    expect(upstream.seen.some((s) => s.url.includes('tag=agent-wrong'))).toBe(false);
    expectNoLeak(agentProxy, r.stderr, r.stdout);
  });

  it('refuses a wrong agent key with 407 through -x as well, and an unknown agent id', async () => {
    for (const [tag, url] of [
      ['agent-wrong-x', agentUrl('AGENT-KEY-1')],
      ['agent-unknown-x', `http://codex:${AGENT_KEY}@127.0.0.1:${agentProxy.port}`],
    ] as const) {
      const r = await curl(['-w', '%{http_connect}', '-o', '/dev/null', '-x', url, '--cacert', agentProxy.bundlePath, urlFor(tag)], cleanEnv());
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('407');
      expect(upstream.seen.some((s) => s.url.includes(`tag=${tag}`))).toBe(false);
      expectNoLeak(agentProxy, r.stderr, r.stdout);
    }
  });

  it('injects for the right key, with no proxy credentials forwarded (curl, Node fetch, Python)', async () => {
    const url = agentUrl(AGENT_KEY);
    const c = await curl(
      ['--fail-with-body', '-H', `Authorization: ${CLIENT_AUTH}`, urlFor('agent-ok-curl')],
      cleanEnv({ HTTPS_PROXY: url, CURL_CA_BUNDLE: agentProxy.bundlePath }),
    );
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expectInjected('agent-ok-curl', JSON.parse(c.stdout) as Echo);
    const n = await nodeFetch(
      urlFor('agent-ok-node'),
      cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: url, NODE_EXTRA_CA_CERTS: agentProxy.caPath }),
      CLIENT_AUTH,
    );
    expect(n.code, n.stderr).toBe(0);
    expectInjected('agent-ok-node', parseClientEcho(n.stdout).echo);
    const p = await pythonRequests(urlFor('agent-ok-python'), cleanEnv({ HTTPS_PROXY: url, REQUESTS_CA_BUNDLE: agentProxy.bundlePath }), CLIENT_AUTH);
    expect(p.code, p.stderr).toBe(0);
    expectInjected('agent-ok-python', parseClientEcho(p.stdout).echo);
    expect(
      await waitFor(() => agentProxy.auditLines().filter((l) => l['agent'] === 'claude' && l['decision'] === 'inject' && l['grant'] === 'github').length >= 3),
    ).toBe(true);
    expectNoLeak(agentProxy, c.stderr, c.stdout, n.stderr, n.stdout, p.stderr, p.stdout);
  });
});

/** Requests the upstream saw for the git ref advertisement. */
function refsRequests() {
  return upstream.seen.filter((s) => s.url.startsWith('/repo.git/info/refs'));
}

describe('git (smart HTTP ref advertisement)', () => {
  const repoUrl = () => `https://${HOST}:${upstream.port}/repo.git`;
  const gitEnv = (key: string | undefined) => cleanEnv({ https_proxy: agentUrl(key), GIT_SSL_CAINFO: agentProxy.bundlePath });

  it('gets a 407, retries with the agent credentials, and ls-remote succeeds with the grant injected', async () => {
    const auditBefore = agentProxy.auditLines().length;
    const seenBefore = refsRequests().length;
    const r = await git(['ls-remote', repoUrl()], gitEnv(AGENT_KEY));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${GIT_REF_SHA}\tHEAD`);
    expect(r.stdout).toContain(`${GIT_REF_SHA}\trefs/heads/main`);

    const refs = refsRequests().slice(seenBefore);
    expect(refs.length).toBeGreaterThan(0);
    for (const seen of refs) {
      expect(seen.url).toBe('/repo.git/info/refs?service=git-upload-pack');
      expect(seen.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(seen.headers['proxy-authorization']).toBeUndefined();
    }

    // The audit shows the challenge, then the injected request for the same agent.
    const injected = (l: Record<string, unknown>) => l['decision'] === 'inject' && l['path'] === '/repo.git/info/refs' && l['agent'] === 'claude';
    expect(await waitFor(() => agentProxy.auditLines().slice(auditBefore).some(injected))).toBe(true);
    const lines = agentProxy.auditLines().slice(auditBefore);
    const challenge = lines.findIndex((l) => l['code'] === 'proxy_auth_required' && l['method'] === 'CONNECT' && l['host'] === HOST && l['status'] === 407);
    const success = lines.findIndex(injected);
    expect(challenge).toBeGreaterThanOrEqual(0);
    expect(success).toBeGreaterThan(challenge);
    expect(lines[success]?.['status']).toBe(200);
    expectNoLeak(agentProxy, r.stderr, r.stdout);
  });

  it('fails with a wrong agent key, and nothing reaches the upstream', async () => {
    const seenBefore = refsRequests().length;
    const r = await git(['ls-remote', repoUrl()], gitEnv('agent-key-2'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/407/);
    expect(refsRequests().length).toBe(seenBefore);
    expectNoLeak(agentProxy, r.stderr, r.stdout);
  });
});
