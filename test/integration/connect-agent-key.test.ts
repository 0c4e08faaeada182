import { readFileSync, readdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canaries, closeWithSockets } from '../helpers/capture-canaries.ts';
import { curl } from '../helpers/clients.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';
import { waitForAsync } from '../helpers/wait.ts';

// `keyway connect AGENT --api-key-stdin`, driven as a person does: the real CLI, the key piped in,
// against a home a running keyway serves. curl then calls each vendor's API host (mapped to a
// loopback stand-in by proxy.hosts, nothing else reachable) with the placeholder the agent would
// hold, and the stand-in sees the real key where the vendor expects it. The key is a canary
// searched for in every output, audit line, log and the store file.

const HOSTS = ['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com'];

/** Where each vendor wants its key, as the stand-in checks it (docs/credentials.md's recipes). */
const EXPECTED: Record<string, { agent: string; header: string; prefix: string; path: string }> = {
  'api.anthropic.com': { agent: 'claude-code', header: 'x-api-key', prefix: '', path: '/v1/messages' },
  'api.openai.com': { agent: 'codex', header: 'authorization', prefix: 'Bearer ', path: '/v1/responses' },
  'generativelanguage.googleapis.com': {
    agent: 'gemini-cli',
    header: 'x-goog-api-key',
    prefix: '',
    path: '/v1beta/models/gemini-2.5-pro:streamGenerateContent',
  },
};

const canaries = new Canaries();
/** The key each host's stand-in takes now (a replaced key replaces it). */
const keys = new Map<string, string>();
/** Every key each host's stand-in saw, in order. */
const seen = new Map<string, string[]>();
/** Everything the CLI printed. */
const outputs: string[] = [];

let standIn: Server;
let closeStandIn: () => Promise<void>;
let port: number;
let proxy: TestProxy;

beforeAll(async () => {
  for (const host of HOSTS) keys.set(host, canaries.make(EXPECTED[host]!.agent.replace('-', '')));
  standIn = createServer(mintTestLeaf(HOSTS), (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const want = EXPECTED[host];
    const given = want === undefined ? undefined : req.headers[want.header];
    if (typeof given === 'string') seen.set(host, [...(seen.get(host) ?? []), given]);
    // The stand-in checks the key as the vendor would: a wrong or missing one is refused.
    const ok = want !== undefined && given === `${want.prefix}${keys.get(host)}`;
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify(ok ? { ok: true, host } : { error: 'invalid api key' }));
  });
  closeStandIn = closeWithSockets(standIn);
  standIn.listen(0, '127.0.0.1');
  await once(standIn, 'listening');
  port = (standIn.address() as AddressInfo).port;
  proxy = await startProxy({
    config: { proxy: { unmatched: 'deny', hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) } },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await closeStandIn?.();
});

async function connect(args: string[], stdin?: string) {
  const result = await proxy.cli(['connect', ...args], stdin);
  outputs.push(result.stdout, result.stderr);
  return result;
}

/** curl through keyway as the agent: the placeholder where the vendor wants the key. */
function callAs(host: string, value = 'keyway-placeholder') {
  const want = EXPECTED[host]!;
  return curl(
    [
      '--proxy',
      proxy.url,
      '--cacert',
      proxy.caPath,
      '-H',
      `${want.header}: ${want.prefix}${value}`,
      '-o',
      '-',
      '-w',
      '\n%{http_connect} %{http_code}',
      `https://${host}:${port}${want.path}`,
    ],
    cleanEnv(),
  );
}

/** The status of a call, once the running keyway has read the store's new grant (it reloads it within 250 ms). */
async function statusOnceServed(host: string, expected: string): Promise<string> {
  return waitForAsync(async () => {
    const r = await callAs(host);
    outputs.push(r.stdout, r.stderr);
    const status = r.stdout.trim().split('\n').pop()!.split(' ')[1];
    return status === expected ? status : undefined;
  }, `${host} answering ${expected} through keyway`);
}

describe('keyway connect AGENT --api-key-stdin', () => {
  it('the stand-in refuses a wrong key: its check is real', async () => {
    // Straight to the stand-in, not through keyway: a key that is not the real one gets 401.
    const r = await curl(
      [
        '--cacert',
        join(import.meta.dirname, '../fixtures/tls/upstream-ca.pem'),
        '--resolve',
        `api.anthropic.com:${port}:127.0.0.1`,
        '-H',
        'x-api-key: sk-ant-wrong',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `https://api.anthropic.com:${port}/v1/messages`,
      ],
      cleanEnv(),
    );
    expect(r.stdout).toBe('401');
  });

  it.each(HOSTS)('the agent for %s gets a grant that puts its key where the vendor wants it', async (host) => {
    const want = EXPECTED[host]!;
    // Before connecting, keyway has no grant for the host: proxy.unmatched: deny refuses the tunnel.
    expect((await callAs(host)).stdout.trim().split('\n').pop()).toBe('403 000');
    const r = await connect([want.agent, '--api-key-stdin'], `  ${keys.get(host)}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`grant ${want.agent}`);
    await statusOnceServed(host, '200');
    expect(seen.get(host)?.at(-1)).toBe(`${want.prefix}${keys.get(host)}`);
    const line = proxy.auditLines().find((l) => l['action'] === 'grants.create' && l['grant'] === want.agent);
    expect(line?.['changed']).toBe('type,domains,inject,secret');
  });

  it('connecting again without --replace is refused, and the stored key stays', async () => {
    const before = canaries.make('second');
    const r = await connect(['claude-code', '--api-key-stdin'], before);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('grant "claude-code" exists');
    expect(r.stderr).toContain('--replace');
    // The first key still goes out: the stand-in takes only that one.
    expect(await statusOnceServed('api.anthropic.com', '200')).toBe('200');
    expect(seen.get('api.anthropic.com')?.at(-1)).toBe(keys.get('api.anthropic.com'));
    const refused = proxy.auditLines().filter((l) => l['action'] === 'grants.create' && l['grant'] === 'claude-code' && l['code'] === 'conflict');
    expect(refused).toHaveLength(1);
  });

  it('--replace puts a new key in place of the stored one', async () => {
    const next = canaries.make('replaced');
    const r = await connect(['claude-code', '--replace'], `${next}\n`);
    expect(r.code, r.stderr).toBe(0);
    const old = keys.get('api.anthropic.com');
    keys.set('api.anthropic.com', next);
    await statusOnceServed('api.anthropic.com', '200');
    expect(seen.get('api.anthropic.com')?.at(-1)).toBe(next);
    expect(seen.get('api.anthropic.com')).toContain(old);
    expect(proxy.auditLines().some((l) => l['action'] === 'grants.replace' && l['grant'] === 'claude-code' && l['code'] === null)).toBe(true);
  });

  it('a key on the command line, an empty or a multi-line key is refused, and never repeated', async () => {
    const inArgv = canaries.make('argv');
    const refused = [
      ['codex', `--api-key=${inArgv}`],
      ['codex', '--api-key', inArgv],
      ['codex', inArgv],
      ['codex', '--grant', 'codex-two', '--api-key-stdin'],
      ['gemini-cli', '--grant', 'gemini-two', '--api-key-stdin'],
      // No way named, nothing piped (a script's stdin): both ways are said, not only "pipe it in".
      ['codex', '--grant', 'codex-three'],
    ];
    const stdin = ['', '', '', `${inArgv}\n${inArgv}\n`, ' \n', ''];
    const results = await Promise.all(refused.map((args, i) => connect(args, stdin[i])));
    for (const [i, r] of results.entries()) expect(r.code, refused[i]!.join(' ')).toBe(2);
    expect(results[4]!.stderr).toContain('no API key on standard input');
    expect(results[5]!.stderr).toContain('no way was named: pipe its key in (printf %s "$KEY" | keyway connect codex --api-key-stdin), or log in with --login');
    // None of them made a grant.
    expect((await connect(['--help'])).code).toBe(0);
    const listing = await proxy.cli(['grants', 'list', '--json']);
    expect((JSON.parse(listing.stdout) as Array<{ id: string }>).map((g) => g.id).sort()).toEqual(['claude-code', 'codex', 'gemini-cli']);
    expect(outputs.join('\n')).toContain('spans several lines');
    expect(outputs.join('\n')).toContain('pipe it in with --api-key-stdin');
    const list = await connect(['--help']);
    expect(list.stdout).toContain('keyway connect claude-code | codex | gemini-cli');
  });

  it('an unknown name gets the nearest agent or provider', async () => {
    const r = await connect(['claude-cod', '--api-key-stdin'], 'x');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean claude-code?');
    expect(r.stderr).toContain('agents: claude-code, codex, gemini-cli');
  });

  it('no key shows in any output, audit line, log or the store file', () => {
    const places: Array<[string, string | Buffer]> = [
      ['the CLI output', outputs.join('\n')],
      ['the audit log', readFileSync(proxy.auditPath)],
      ['the app log', proxy.logs.join('')],
      ...filesUnder(join(proxy.home, 'data')).map((file): [string, Buffer] => [file, readFileSync(file)]),
    ];
    for (const [where, bytes] of places) expect(canaries.leaks(bytes), where).toEqual([]);
    // The search bites: the canary is found where it is.
    expect(canaries.leaks(`x ${keys.get('api.openai.com')} y`)).not.toEqual([]);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return stat.isDirectory() ? filesUnder(path) : stat.isFile() ? [path] : [];
  });
}
