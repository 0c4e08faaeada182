import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Mistakes that show on the wire, through the real proxy and real curl: an internal API whose CA
// keyway does not trust, a basic secret written either way in the config, and an agent key rotated.

const HOSTS = ['api.example.test', 'other.example.test', 'internal.example.test', 'basic-json.example.test', 'basic-pair.example.test'];

let upstream: TestUpstream;
let internal: Server;
let internalPort: number;
let internalHits = 0;
let proxy: TestProxy;

/** A CA nobody trusts and a leaf it signed for internal.example.test, made with openssl for this run. */
function makeUnknownCa(): { cert: string; key: string } {
  const dir = makeHome();
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Internal Test CA',
  ]);
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'leaf-key.pem',
    '-out',
    'leaf.csr',
    '-subj',
    '/CN=internal.example.test',
    '-addext',
    'subjectAltName=DNS:internal.example.test',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    'leaf.pem',
    '-days',
    '2',
    '-copy_extensions',
    'copy',
  ]);
  return { cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'), key: readFileSync(join(dir, 'leaf-key.pem'), 'utf8') };
}

beforeAll(async () => {
  upstream = await startUpstream();
  const leaf = makeUnknownCa();
  internal = createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
    internalHits++;
    res.end('internal');
  });
  await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
  internalPort = (internal.address() as AddressInfo).port;
  proxy = await startProxy({
    grants: [{ id: 'svc', type: 'api_key', domains: ['other.example.test'], secret: CANARY, inject: { header: 'X-Api-Key', format: '{secret}' } }],
    config: {
      proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
      grants: {
        internal: { type: 'bearer', domains: ['internal.example.test'], secret: 'env:INTERNAL_TOKEN' },
        'basic-json': { type: 'basic', domains: ['basic-json.example.test'], secret: 'env:BASIC_JSON' },
        'basic-pair': { type: 'basic', domains: ['basic-pair.example.test'], secret: 'env:BASIC_PAIR' },
        api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' },
      },
    },
    env: {
      INTERNAL_TOKEN: CANARY,
      API_TOKEN: CANARY,
      BASIC_JSON: JSON.stringify({ username: 'json-user', password: CANARY }),
      BASIC_PAIR: `pair-user:${CANARY}`,
    },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  await new Promise((resolve) => internal?.close(resolve));
});

/** curl through the proxy (as this agent, if given): the CONNECT status, the final status and the body. */
async function through(url: string, agent?: { id: string; key: string }) {
  const auth = agent ? `${encodeURIComponent(agent.id)}:${encodeURIComponent(agent.key)}@` : '';
  const r = await curl(['-x', `http://${auth}127.0.0.1:${proxy.port}`, '--cacert', proxy.caPath, '-w', '\n%{http_connect} %{http_code}', url], cleanEnv());
  const lines = r.stdout.split('\n');
  const [connect, status] = (lines.pop() ?? '').split(' ').map(Number);
  return { connect, status, body: lines.join('\n'), stderr: r.stderr };
}

describe('an upstream whose CA keyway does not trust', () => {
  it('answers 502 with a hint to proxy.upstream_ca, and sends it nothing', async () => {
    const r = await through(`https://internal.example.test:${internalPort}/x?token=${CANARY}-q`);
    expect(r.status).toBe(502);
    const error = (JSON.parse(r.body) as { error: Record<string, string> }).error;
    expect(error['code']).toBe('upstream_unreachable');
    expect(error['message']).toMatch(/signed by a CA keyway does not trust \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    expect(error['hint']).toContain('proxy.upstream_ca');
    expect(internalHits).toBe(0);
    expect(r.body + r.stderr).not.toContain(CANARY);
  });
});

describe('a basic secret in the config', () => {
  it('is read as JSON or as user:password', async () => {
    for (const [host, user] of [
      ['basic-json.example.test', 'json-user'],
      ['basic-pair.example.test', 'pair-user'],
    ] as const) {
      const r = await through(`https://${host}:${upstream.port}/echo`);
      expect(r.status, r.body).toBe(200);
      const sent = upstream.seen.at(-1)?.headers.authorization;
      expect(sent).toBe(`Basic ${Buffer.from(`${user}:${CANARY}`).toString('base64')}`);
    }
  });
});

describe('grants set', () => {
  it('changes how a running proxy injects a grant, with the same secret', async () => {
    const url = `https://other.example.test:${upstream.port}/echo`;
    expect((await through(url)).status).toBe(200);
    expect(upstream.seen.at(-1)?.headers['x-api-key']).toBe(CANARY);
    const r = await proxy.cli(['grants', 'set', 'svc', '--header', 'Authorization', '--format', 'Token {secret}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('secret kept');
    await eventually(async () => (await through(url)).status === 200 && upstream.seen.at(-1)?.headers.authorization === `Token ${CANARY}`);
    expect(upstream.seen.at(-1)?.headers['x-api-key']).toBeUndefined();
    expect(r.stdout + r.stderr).not.toContain(CANARY);
  });
});

describe('agents rotate-key', () => {
  it('gives a new key, prints the new proxy URL once, and the old key is refused', async () => {
    const added = await proxy.cli(['agents', 'add', 'a1', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const old = JSON.parse(added.stdout) as { id: string; key: string };
    const url = `https://api.example.test:${upstream.port}/echo`;
    await eventually(async () => (await through(url, old)).status === 200);

    const rotated = await proxy.cli(['agents', 'rotate-key', 'a1']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const [printedUrl] = rotated.stdout.split('\n');
    const fresh = new URL(printedUrl!);
    expect(`${fresh.hostname}:${fresh.port}`).toBe(`127.0.0.1:${proxy.port}`);
    const key = decodeURIComponent(fresh.password);
    expect(key).not.toBe(old.key);
    expect(decodeURIComponent(fresh.username)).toBe('a1');

    // Within the store watch's reload, the old key gets 407 and the new one 200.
    await eventually(async () => (await through(url, old)).connect === 407);
    expect((await through(url, { id: 'a1', key })).status).toBe(200);
    expect((await through(url, old)).connect).toBe(407);
    // The key is shown once: listings never carry it.
    const list = await proxy.cli(['agents', 'list', '--json']);
    expect(list.stdout).not.toContain(key);
    expect((await proxy.cli(['agents', 'rotate-key', 'nobody'])).stderr).toContain('no agent "nobody"');
  });
});

async function eventually(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 150));
  }
}
