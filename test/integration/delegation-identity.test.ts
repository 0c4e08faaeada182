import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { type FileIssuer, fileIssuer } from '../helpers/identity-issuer.ts';
import { cleanEnv, runCli, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89 item 5: an agent that signs in with an identity token (a Kubernetes service-account
// token here, from a JWKS file) delegates as a key agent does, through the door. Its children are
// tied to the identity mapping that reaches it (delegation/identity-tie.ts): a child never outlives
// the token it was minted under, and a change of who may sign in as the parent ends its children.

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const GITHUB = 'api.example.test';
const OPENAI = 'other.example.test';

describe('delegation by an identity-token agent', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let k8s: FileIssuer;
  let token: string;

  const identities = (namespace: string) => [
    {
      issuer: ISSUER,
      jwks: k8s.jwksPath,
      audience: 'keyway',
      map: [{ claims: { 'kubernetes.io.namespace': namespace, sub: 'system:serviceaccount:agents:*' }, agent: 'pod' }],
    },
  ];

  beforeAll(async () => {
    upstream = await startUpstream();
    k8s = await fileIssuer(ISSUER, join(mkdtempSync(join(tmpdir(), 'keyway-deleg-identity-')), 'jwks.json'));
    proxy = await startProxy({
      config: { agents: { pod: { grants: ['github', 'openai'] } }, identities: identities('agents') },
      grants: [
        { id: 'github', type: 'bearer', domains: [GITHUB], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: [OPENAI], secret: 'kw-canary-openai-ident-31' },
      ],
    });
    token = await k8s.sign({ aud: 'keyway', sub: 'system:serviceaccount:agents:worker', 'kubernetes.io': { namespace: 'agents' } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const podUrl = () => `http://jwt:${token}@127.0.0.1:${proxy.port}`;
  const curl = async (asProxy: string, host: string): Promise<number> => {
    const result = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--proxy-header', 'Connection: close', `https://${host}:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: asProxy, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    return Number(result.stdout) || Number(/response (\d{3})/.exec(result.stderr)?.[1] ?? 0);
  };

  it('mints a child with one of its grants, tied to it and no longer than its token', async () => {
    expect(await curl(podUrl(), GITHUB)).toBe(200);
    const minted = await runCli(
      ['delegate', '--name', 'helper', '--grants', 'github', '--json'],
      cleanEnv({ HTTPS_PROXY: podUrl(), NODE_EXTRA_CA_CERTS: proxy.caPath }),
    );
    expect(minted.stderr).toBe('');
    const child = JSON.parse(minted.stdout) as { id: string; proxy_url: string; chain: string[]; expires_at: string };
    expect(child).toMatchObject({ id: 'pod-helper', chain: ['pod', 'pod-helper'] });
    // The token lives 10 minutes (and its clock_skew, 60 s): the child no longer, whatever the default TTL (1h).
    expect(Date.parse(child.expires_at)).toBeLessThanOrEqual(Date.now() + 660_000);
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB)) === 200 ? true : undefined), 'the child served');
    expect(await curl(child.proxy_url, OPENAI)).toBe(403);
    const line = proxy.auditLines().find((l) => l['action'] === 'agent.delegate' && l['agent'] === 'pod-helper');
    expect(line).toMatchObject({ decision: 'admin', actor: 'agent:pod', identity: { iss: ISSUER, sub: 'system:serviceaccount:agents:worker' } });
    expect(JSON.stringify(proxy.auditLines())).not.toContain(token);

    // Who may sign in as the parent changes: its children are no longer its children.
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, stringify({ ...config, identities: identities('other-namespace') }));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB)) === 407 ? true : undefined), 'the child cut with the mapping');
    // And gone from the store: the mapping put back does not bring it back.
    const listed = await runCli(['agents', 'list', '--json'], { KEYWAY_HOME: proxy.home, KEYWAY_MASTER_KEY: proxy.env['KEYWAY_MASTER_KEY']! });
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((a) => a.id)).not.toContain('pod-helper');
    writeFileSync(file, stringify(config));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    expect(await curl(podUrl(), GITHUB)).toBe(200);
    expect(await curl(child.proxy_url, GITHUB)).toBe(407);
  });
});
