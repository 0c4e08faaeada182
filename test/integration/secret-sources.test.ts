// Grants whose secret lives in a secret source (issue 49): AWS Secrets Manager and SSM Parameter
// Store read by keyway through the AWS SDK v3 clients, each request signed and checked by a
// double of the service's wire protocol (moto's shape, on plain HTTP); Vault's KV v2 HTTP API by a
// double that checks the token. A real undici client goes through a real keyway to a loopback
// upstream that takes only the value the source holds now.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { DIST_CLI, startChildProxy } from '../helpers/child-proxy.ts';
import { cleanEnv, makeHome, runCli, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { parseMetrics, seriesKey } from '../helpers/metrics-text.ts';
import {
  type AwsSecretsDouble,
  type ConnectDouble,
  startConnectDouble,
  startSecretsManagerDouble,
  startSsmDouble,
  startVaultDouble,
  type VaultDouble,
} from '../helpers/secret-source-doubles.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

const AWS_KEY = { accessKeyId: 'AKIASOURCEREADER01', secretAccessKey: `${CANARY}-aws-secret-key` };
const VAULT_TOKEN = `hvs.${CANARY}-vault-token`;
const V1 = `${CANARY}-sm-value-one`;
const V2 = `${CANARY}-sm-value-two`;
const ROTATED = `${CANARY}-sm-rotated`;
const SSM_VALUE = `${CANARY}-ssm-value`;
const VAULT_VALUE = `${CANARY}-vault-value`;
const OP_VALUE = `${CANARY}-1password-value`;
const OP_TOKEN = `${CANARY}-connect-token`;
const K8S_JWT = `eyJ.${CANARY}-k8s-service-account`;
const k8sTokenFile = join(makeHome(), 'token');
const VALUES = [V1, V2, ROTATED, SSM_VALUE, VAULT_VALUE, OP_VALUE, OP_TOKEN, K8S_JWT, AWS_KEY.secretAccessKey, VAULT_TOKEN];
const HOSTS = [
  'sm.example.test',
  'rot.example.test',
  'ssm.example.test',
  'vault.example.test',
  'nokey.example.test',
  'badvault.example.test',
  'op.example.test',
  'oppw.example.test',
  'badop.example.test',
  'rej.example.test',
  'vaultenv.example.test',
  'vaultk8s.example.test',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a grant secret from a secret source', () => {
  let sm: AwsSecretsDouble;
  let ssm: AwsSecretsDouble;
  let vault: VaultDouble;
  let connect: ConnectDouble;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const accepted = new Set([V1, SSM_VALUE, VAULT_VALUE, OP_VALUE]);
  const errors: string[] = [];

  const get = async (host: string) => {
    const res = await request(`https://${host}:${upstream.port}/echo`, { dispatcher: client, signal: AbortSignal.timeout(slack(20_000)) });
    const text = await res.body.text();
    if (res.statusCode >= 400) errors.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };
  const sentTo = (host: string) => upstream.seen.filter((s) => s.headers.host?.startsWith(host)).map((s) => s.headers.authorization);
  const smCalls = (id: string) => sm.calls.filter((c) => (c.body as { SecretId?: string }).SecretId === id).length;
  const lastLine = (grant: string) =>
    proxy
      .auditLines()
      .filter((l) => l['grant'] === grant)
      .at(-1);

  beforeAll(async () => {
    sm = await startSecretsManagerDouble(
      [AWS_KEY],
      new Map([
        ['prod/github', JSON.stringify({ token: V1, note: 'rotated monthly' })],
        ['prod/rotating', ROTATED],
        ['prod/rejected', `${CANARY}-never-taken`],
      ]),
    );
    ssm = await startSsmDouble([AWS_KEY], new Map([['/prod/ssm-token', SSM_VALUE]]));
    vault = await startVaultDouble({ token: VAULT_TOKEN, kubernetes: { role: 'keyway', jwt: K8S_JWT } });
    writeFileSync(k8sTokenFile, K8S_JWT);
    vault.secrets.set('apps/widget', { api_key: VAULT_VALUE });
    connect = await startConnectDouble(OP_TOKEN);
    connect.vaults.set('Engineering', new Map([['Widget API', { username: 'robot', credential: OP_VALUE, password: OP_VALUE }]]));
    upstream = await startUpstream({ authorize: async (authorization) => [...accepted].some((v) => authorization === `Bearer ${v}`) });
    proxy = await startProxy({
      env: {
        ...AWS_KEY_ENV(),
        VAULT_TOKEN_REF: VAULT_TOKEN,
        BAD_VAULT_TOKEN: 'hvs.not-the-token',
        OP_CONNECT_TOKEN: OP_TOKEN,
        BAD_OP_TOKEN: 'not-the-token',
        VAULT_ADDR: 'http://vault.corp.example:8200',
      },
      config: {
        proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ...HOSTS].map((h) => [h, '127.0.0.1'])) },
        secret_sources: {
          aws: { type: 'aws_secrets_manager', region: 'us-east-1', endpoint: sm.url, ttl: '1s', failure_ttl: '0s', max_stale: '3s' },
          aws_slow: { type: 'aws_secrets_manager', region: 'us-east-1', endpoint: sm.url, ttl: '1h' },
          params: { type: 'aws_ssm', region: 'us-east-1', endpoint: ssm.url },
          vault: { type: 'vault_kv', address: vault.url, token: 'env:VAULT_TOKEN_REF' },
          badvault: { type: 'vault_kv', address: vault.url, token: 'env:BAD_VAULT_TOKEN' },
          op: { type: 'onepassword', connect_host: connect.url },
          aws_rej: { type: 'aws_secrets_manager', region: 'us-east-1', endpoint: sm.url, ttl: '1h', failure_ttl: '0s', max_stale: '1h' },
          vaultenv: { type: 'vault_kv', token: 'env:VAULT_TOKEN_REF' },
          vaultk8s: { type: 'vault_kv', address: vault.url, kubernetes: { role: 'keyway', token_file: k8sTokenFile } },
          badop: { type: 'onepassword', connect_host: connect.url, token: 'env:BAD_OP_TOKEN' },
        },
        grants: {
          github: { type: 'bearer', domains: ['sm.example.test'], secret: { from: 'aws', id: 'prod/github', key: 'token' } },
          rotating: { type: 'bearer', domains: ['rot.example.test'], secret: { from: 'aws_slow', id: 'prod/rotating' } },
          params: { type: 'bearer', domains: ['ssm.example.test'], secret: { from: 'params', id: '/prod/ssm-token' } },
          widget: { type: 'bearer', domains: ['vault.example.test'], secret: { from: 'vault', id: 'apps/widget', key: 'api_key' } },
          nokey: { type: 'bearer', domains: ['nokey.example.test'], secret: { from: 'aws', id: 'prod/github', key: 'missing_field' } },
          badvault: { type: 'bearer', domains: ['badvault.example.test'], secret: { from: 'badvault', id: 'apps/widget', key: 'api_key' } },
          rej: { type: 'bearer', domains: ['rej.example.test'], secret: { from: 'aws_rej', id: 'prod/rejected' } },
          vaultk8s: { type: 'bearer', domains: ['vaultk8s.example.test'], secret: { from: 'vaultk8s', id: 'apps/widget', key: 'api_key' } },
          vaultenv: { type: 'bearer', domains: ['vaultenv.example.test'], secret: { from: 'vaultenv', id: 'apps/widget', key: 'api_key' } },
          op: { type: 'bearer', domains: ['op.example.test'], secret: { from: 'op', id: 'op://Engineering/Widget API/credential' } },
          oppw: { type: 'bearer', domains: ['oppw.example.test'], secret: { from: 'op', id: 'Engineering/Widget API' } },
          badop: { type: 'bearer', domains: ['badop.example.test'], secret: { from: 'badop', id: 'op://Engineering/Widget API/credential' } },
        },
      },
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await Promise.all([sm?.close(), ssm?.close(), vault?.close(), connect?.close(), upstream?.close()]);
  });

  it('the doubles refuse a wrong key and a wrong token', async () => {
    const wrong = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: sm.url,
      credentials: { accessKeyId: AWS_KEY.accessKeyId, secretAccessKey: 'not-the-secret-key' },
      maxAttempts: 1,
    });
    await expect(wrong.send(new GetSecretValueCommand({ SecretId: 'prod/github' }))).rejects.toThrow(/signature/i);
    const res = await fetch(`${vault.url}/v1/secret/data/apps/widget`, { headers: { 'x-vault-token': 'hvs.wrong' } });
    expect(res.status).toBe(403);
  });

  it('Secrets Manager: a JSON field is injected; a burst of requests makes one fetch; the audit line names the source', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => get('sm.example.test')));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(new Set(sentTo('sm.example.test'))).toEqual(new Set([`Bearer ${V1}`]));
    expect(smCalls('prod/github')).toBe(1);
    expect(lastLine('github')).toMatchObject({ decision: 'inject', secret_source: 'aws' });
  });

  it('a value changed at the source is used once its ttl has passed', async () => {
    sm.values.set('prod/github', JSON.stringify({ token: V2 }));
    accepted.add(V2);
    await sleep(1_200);
    expect((await get('sm.example.test')).status).toBe(200);
    expect(sentTo('sm.example.test').at(-1)).toBe(`Bearer ${V2}`);
  });

  it('the source down: the last value within max_stale, then 502 secret_unavailable with nothing sent upstream; back: served again', async () => {
    await get('sm.example.test'); // fetched now: fresh for 1 s, servable until 4 s from now
    await sm.pause();
    await sleep(1_200);
    const stale = await get('sm.example.test');
    expect(stale.status).toBe(200);
    expect(sentTo('sm.example.test').at(-1)).toBe(`Bearer ${V2}`);
    expect(proxy.logs.join('')).toMatch(/serving its last value/);
    const scrape = async () => parseMetrics((await adminClient(proxy).call('GET', '/metrics')).text);
    expect((await scrape()).get(seriesKey('keyway_secret_source_up', { source: 'aws' }))).toBe(0);

    await sleep(3_200); // past ttl + max_stale
    const before = upstream.seen.length;
    const refused = await get('sm.example.test');
    expect(refused).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(refused.text).toMatch(/secret source aws: prod\/github#token cannot give the secret/);
    expect(upstream.seen.length).toBe(before);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === 'github' && l['code'] === 'secret_unavailable'), 'the refusal line');
    expect(line).toMatchObject({ decision: 'error', secret_source: 'aws' });

    await sm.resume();
    // failure_ttl 0s: the next request tries the source again.
    expect((await get('sm.example.test')).status).toBe(200);
    expect((await scrape()).get(seriesKey('keyway_secret_source_up', { source: 'aws' }))).toBe(1);
  });

  it("an upstream's 401 fetches the secret again at once, and the request is replayed with the new value", async () => {
    expect((await get('rot.example.test')).status).toBe(401); // the upstream does not take ROTATED yet
    const fetched = smCalls('prod/rotating');
    sm.values.set('prod/rotating', V1); // rotated at the source; the old one is refused upstream
    await sleep(1_100); // a 401 within 1 s of the last fetch again is answered from it (no fetch per 401)
    const res = await get('rot.example.test');
    expect(res.status).toBe(200);
    expect(smCalls('prod/rotating')).toBe(fetched + 1);
    expect(sentTo('rot.example.test').slice(-2)).toEqual([`Bearer ${ROTATED}`, `Bearer ${V1}`]);
  });

  it('SSM Parameter Store and Vault KV v2: each value injected', async () => {
    expect((await get('ssm.example.test')).status).toBe(200);
    expect(sentTo('ssm.example.test').at(-1)).toBe(`Bearer ${SSM_VALUE}`);
    expect(ssm.calls.at(-1)?.body).toMatchObject({ Name: '/prod/ssm-token', WithDecryption: true });
    expect((await get('vault.example.test')).status).toBe(200);
    expect(sentTo('vault.example.test').at(-1)).toBe(`Bearer ${VAULT_VALUE}`);
  });

  it('1Password Connect: an op:// reference, and an item without a field gives its password; a wrong token is refused', async () => {
    expect((await get('op.example.test')).status).toBe(200);
    expect(sentTo('op.example.test').at(-1)).toBe(`Bearer ${OP_VALUE}`);
    expect((await get('oppw.example.test')).status).toBe(200);
    const before = upstream.seen.length;
    const bad = await get('badop.example.test');
    expect(bad).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect((JSON.parse(bad.text) as { error: { message: string } }).error.message).toMatch(/1Password Connect answered 401: Invalid token signature/);
    expect(upstream.seen.length).toBe(before);
    expect(connect.calls.some((c) => !c.allowed)).toBe(true);
  });

  it('a missing field, a token Vault refuses: 502 secret_unavailable saying why, nothing sent upstream', async () => {
    const before = upstream.seen.length;
    const nokey = await get('nokey.example.test');
    expect(nokey).toMatchObject({ status: 502, code: 'secret_unavailable' });
    const message = (text: string) => (JSON.parse(text) as { error: { message: string } }).error.message;
    expect(message(nokey.text)).toMatch(/no field "missing_field" \(its fields: token\)/);
    const bad = await get('badvault.example.test');
    expect(bad).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(message(bad.text)).toMatch(/Vault answered 403: permission denied/);
    expect(upstream.seen.length).toBe(before);
  });

  it("Vault's Kubernetes auth: the pod's service account token is exchanged for a Vault token, and the secret injected", async () => {
    expect((await get('vaultk8s.example.test')).status).toBe(200);
    expect(sentTo('vaultk8s.example.test').at(-1)).toBe(`Bearer ${VAULT_VALUE}`);
    expect(vault.calls.some((c) => c.path === '/v1/auth/kubernetes/login' && c.allowed)).toBe(true);
  });

  it('VAULT_ADDR is held to the https rule: a plain-http Vault off loopback is refused before the token is sent', async () => {
    const calls = vault.calls.length;
    const res = await get('vaultenv.example.test');
    expect(res).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect((JSON.parse(res.text) as { error: { message: string } }).error.message).toMatch(/VAULT_ADDR: expected an https:\/\/ URL/);
    expect(vault.calls.length).toBe(calls);
  });

  it('a value the upstream refused is never served again, even within max_stale while the source is down', async () => {
    const first = await get('rej.example.test');
    expect(first.status, first.text).toBe(401); // fetched, refused, fetched again (the same), 401 passed on
    // In the source's own words, not a secret command's (issue 60).
    const said = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === 'rej' && l['replay'] !== undefined), 'the 401 line');
    expect(said).toMatchObject({ replay: 'skipped: the secret source gave the same value', secret_source: 'aws_rej', status: 401 });
    await sleep(1_100); // past the hold that answers a second 401 from the fetch just made
    await sm.pause();
    try {
      const sentBefore = sentTo('rej.example.test').length;
      const afterRefusal = await get('rej.example.test'); // the held value goes once more, is refused, cannot be fetched again
      expect(afterRefusal.status).toBe(502);
      expect(sentTo('rej.example.test').length).toBe(sentBefore + 1);
      const next = await get('rej.example.test');
      expect(next).toMatchObject({ status: 502, code: 'secret_unavailable' });
      expect(sentTo('rej.example.test').length).toBe(sentBefore + 1);
    } finally {
      await sm.resume();
    }
  });

  it('keyway doctor fetches each item and says whether it reads as the secret, never showing it', async () => {
    const doctor = await proxy.cli(['doctor', '--json', '--timeout', '5s']);
    errors.push(doctor.stdout, doctor.stderr);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks;
    const line = (grant: string) => checks.find((c) => c.check.startsWith(`grant ${grant}'s secret at`));
    expect(line('github')).toMatchObject({ status: 'ok', check: "grant github's secret at aws: prod/github#token" });
    expect(line('params')).toMatchObject({ status: 'ok' });
    expect(line('widget')).toMatchObject({ status: 'ok' });
    expect(line('nokey')).toMatchObject({ status: 'fail' });
    expect(line('nokey')!.detail).toMatch(/no field "missing_field"/);
    expect(line('badvault')!.detail).toMatch(/Vault answered 403: permission denied/);
    expect(doctor.code).toBe(1);
  });

  it('grants list says where each secret lives and when it was last fetched, never the value', async () => {
    const listed = await proxy.cli(['grants', 'list', '--json']);
    errors.push(listed.stdout, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ id: string; secret_from: string; last_refreshed_at: string | null }>;
    const github = rows.find((r) => r.id === 'github')!;
    expect(github.secret_from).toBe('aws: prod/github#token');
    expect(Date.now() - Date.parse(github.last_refreshed_at!)).toBeLessThan(60_000);
    expect(rows.find((r) => r.id === 'nokey')!.last_refreshed_at).toBeNull();
  });

  it('no value, key or token in any log line, audit line, metric or error', async () => {
    const metrics = (await adminClient(proxy).call('GET', '/metrics')).text;
    const outputs = [proxy.logs.join(''), JSON.stringify(proxy.auditLines()), metrics, ...errors];
    for (const value of VALUES) for (const text of outputs) expect(findLeak(text, value)).toBeUndefined();
  });
});

function AWS_KEY_ENV(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey };
}

describe('a secret source under proxy.workers: one fetch per ttl for every process', () => {
  it('24 connections spread over two workers make one Secrets Manager call (two without the shared value)', async () => {
    const sm = await startSecretsManagerDouble([AWS_KEY], new Map([['prod/shared', V1]]));
    const upstream = await startUpstream({ requireAuthorization: `Bearer ${V1}` });
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          workers: 2,
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: ['127.0.0.0/8'],
          hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
        },
        secret_sources: { aws: { type: 'aws_secrets_manager', region: 'us-east-1', endpoint: sm.url, ttl: '1h' } },
        grants: { shared: { type: 'bearer', domains: ['api.example.test'], secret: { from: 'aws', id: 'prod/shared' } } },
      }),
    );
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), ...AWS_KEY_ENV() });
    const child = await startChildProxy({ cli: DIST_CLI, home, env });
    try {
      const ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
      const fresh = async (i: number) => {
        const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca } });
        try {
          const res = await request(`https://api.example.test:${upstream.port}/echo?n=${i}`, { dispatcher, signal: AbortSignal.timeout(slack(20_000)) });
          await res.body.text();
          return res.statusCode;
        } finally {
          await dispatcher.close();
        }
      };
      const statuses = await Promise.all(Array.from({ length: 24 }, (_, i) => fresh(i)));
      expect(statuses).toEqual(Array(24).fill(200));
      const status = JSON.parse((await runCli(['status', '--json', '--home', home], env)).stdout) as { workers: Array<{ requests?: number }> };
      expect(status.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);
      expect(sm.calls.length).toBe(1);
    } finally {
      await child.stop();
      await Promise.all([sm.close(), upstream.close()]);
    }
  });
});
