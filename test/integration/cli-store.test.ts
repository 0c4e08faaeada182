import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, cliCommand, makeHome, runCli, runProcess, TEST_HOSTS } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';
import { USAGE_PREFIX } from '../../src/credentials/grant-record.ts';
import { QUOTA_PREFIX } from '../../src/quotas/record.ts';
import { BUDGET_PREFIX, SPEND_PREFIX } from '../../src/spend/core/records.ts';

const STORE_WRITER = fileURLToPath(new URL('../fixtures/store-writer.ts', import.meta.url));

// keyway as a user runs it: `keyway start` in its own process, changed by the CLI while it serves.

function writeConfig(home: string): void {
  mkdirSync(join(home, 'config'), { recursive: true });
  const config = {
    proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
  };
  writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
}

/**
 * keyway's bundle plus the test upstream's CA: a blind tunnel (no grant) then reaches the upstream
 * itself, whose certificate the test CA signed.
 */
function clientBundle(home: string): string {
  const path = join(home, 'client-bundle.pem');
  writeFileSync(path, `${readFileSync(join(home, 'certs', 'bundle.pem'), 'utf8')}\n${TLS_FIXTURES.ca}`);
  return path;
}

async function curlEcho(proxyPort: number, home: string, upstreamPort: number, host = 'api.example.test') {
  const result = await runProcess(
    'curl',
    ['-sS', `https://${host}:${upstreamPort}/echo?token=${CANARY}-query`],
    cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`, CURL_CA_BUNDLE: clientBundle(home) }),
  );
  return { ...result, body: result.stdout.startsWith('{') ? (JSON.parse(result.stdout) as { headers?: Record<string, string> }) : undefined };
}

async function eventually<T>(fn: () => Promise<T | undefined>, ms = slack(3_000, 15_000)): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('keyway start with the CLI beside it', () => {
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    home = makeHome();
    writeConfig(home);
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    proxy = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    const code = await proxy?.stop();
    expect(code).toBe(0);
    outputs.push(proxy.stdout(), proxy.stderr());
    await upstream?.close();
  });

  it('picks up a grant and its secret written by the CLI while serving, within a second or so', async () => {
    const seenBefore = upstream.seen.length;
    const before = await curlEcho(proxy.port, home, upstream.port);
    // Tunnelled blind: no grant yet, so nothing injected (and nothing for the leak guard to redact).
    expect(before.stderr).toBe('');
    expect(upstream.seen.slice(seenBefore).map((s) => s.headers.authorization)).toEqual([undefined]);
    expect(before.body?.headers).toBeDefined();
    expect(before.body?.headers?.['authorization']).toBeUndefined();

    const add = await runCli(['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.example.test', '--home', home], env);
    const set = await runCli(['secrets', 'set', 'github', '--stdin', '--home', home], env, CANARY);
    outputs.push(add.stdout, add.stderr, set.stdout, set.stderr);
    expect(add.code).toBe(0);
    expect(set.code).toBe(0);

    const started = Date.now();
    const after = await eventually(async () => {
      const from = upstream.seen.length;
      const r = await curlEcho(proxy.port, home, upstream.port);
      outputs.push(r.stderr);
      // Between `grants add` and `secrets set` the grant has no secret: keyway answers 401 then.
      const seen = upstream.seen.slice(from);
      return seen.length === 1 && seen[0]?.headers.authorization === `Bearer ${CANARY}` ? { ...r, seen: seen[0] } : undefined;
    });
    expect(after.seen.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(Date.now() - started).toBeLessThan(slack(3_000, 15_000)); // 3 s idle, stretched by the measured load
    // The upstream echoed the secret back: the agent gets it redacted by the leak guard.
    expect(after.body?.headers?.['authorization']).toBe('Bearer [redacted by keyway]');
    expect(after.stdout).not.toContain(CANARY);
  });

  it('loses no write when several CLI processes write the store at once while the proxy serves', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `extra-${i}`);
    await Promise.all([
      ...ids.map((id) => runCli(['grants', 'add', id, '--type', 'bearer', '--domains', `${id}.example.test`, '--home', home], env)),
      ...Array.from({ length: 6 }, () => curlEcho(proxy.port, home, upstream.port)),
    ]);
    const list = await runCli(['grants', 'list', '--json', '--home', home], env);
    expect(list.code).toBe(0);
    const names = (JSON.parse(list.stdout) as Array<{ id: string }>).map((g) => g.id);
    expect(names).toEqual(expect.arrayContaining(['github', ...ids]));
    outputs.push(list.stdout);
  });

  it('rebuilds its tables for a grant change, not for usage, quota or spend records alone (written every second or so under traffic)', async () => {
    const reloads = () => (proxy.stdout() + proxy.stderr()).split('store changed: grants and agents reloaded').length - 1;
    const before = reloads();
    // What the proxy's usage recorder (last use per grant), quota counts and spend ledger (its
    // records and budget counts) write, here from another process.
    for (const prefix of [USAGE_PREFIX, QUOTA_PREFIX, SPEND_PREFIX, BUDGET_PREFIX]) {
      const written = await runProcess(process.execPath, [STORE_WRITER, join(home, 'data', 'store.json'), prefix, '3'], env);
      expect(written.stdout).toContain('done');
    }
    await new Promise((r) => setTimeout(r, 1_200)); // the store is polled every 250 ms
    expect(reloads()).toBe(before);
    const add = await runCli(['grants', 'add', 'noted', '--type', 'bearer', '--domains', 'noted.example.test', '--home', home], env);
    expect(add.code).toBe(0);
    await eventually(async () => (reloads() > before ? true : undefined));
  });

  it('keeps a verifiable audit chain, and `audit verify` finds an edited, a removed and a reordered line', async () => {
    const verify = () => runCli(['audit', 'verify', '--home', home], env);
    const ok = await verify();
    expect(ok.stdout + ok.stderr).toContain('intact');
    expect(ok.code).toBe(0);

    const auditPath = join(home, 'logs', 'audit.jsonl');
    const original = readFileSync(auditPath, 'utf8');
    const lines = original.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const tamper = async (changed: string[]) => {
      writeFileSync(auditPath, `${changed.join('\n')}\n`);
      const r = await verify();
      writeFileSync(auditPath, original);
      return r;
    };
    const edited = await tamper(lines.map((l, i) => (i === 1 ? l.replace(/"duration_ms":[\d.]+/, '"duration_ms":299') : l)));
    expect(edited.code).toBe(1);
    expect(edited.stdout).toMatch(/line 2/);
    const removed = await tamper(lines.filter((_, i) => i !== 1));
    expect(removed.code).toBe(1);
    const reordered = await tamper([lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
    expect(reordered.code).toBe(1);
    const truncated = await tamper(lines.slice(0, -2));
    expect(truncated.code).toBe(1);
    expect((await verify()).code).toBe(0);
  });

  it('never writes the secret or a query string to any log, audit line or CLI output', async () => {
    const audit = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
    expect(audit).toContain('"path":"/echo"');
    const everything = [audit, ...outputs, proxy.stdout(), proxy.stderr()].join('\n');
    expect(everything).not.toContain(CANARY);
    expect(everything).not.toContain('token=');
  });
});

describe('keyway start refuses a store it cannot trust, and leaves it untouched', () => {
  async function startFails(home: string, env: Record<string, string>) {
    const result = await runProcess(
      ...cliCommand(['start', '--home', home, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']),
      env,
      undefined,
      15_000,
    );
    return result;
  }

  function snapshot(dir: string): Record<string, string> {
    return Object.fromEntries(
      readdirSync(dir)
        .filter((f) => statSync(join(dir, f)).isFile())
        .map((f) => [f, readFileSync(join(dir, f), 'base64')]),
    );
  }

  it('a wrong master key is a one-line error naming the key, never an empty store', async () => {
    const home = makeHome();
    writeConfig(home);
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    const add = await runCli(['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin', '--home', home], env, CANARY);
    expect(add.code).toBe(0);
    const before = snapshot(join(home, 'data'));

    const wrong = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    const result = await startFails(home, wrong);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/master key/i);
    expect(snapshot(join(home, 'data'))).toEqual(before);
    const list = await runCli(['grants', 'list', '--home', home], wrong);
    expect(list.code).not.toBe(0);
    expect((await runCli(['grants', 'list', '--home', home], env)).stdout).toContain('github');
  });

  it('a corrupt store is a one-line error naming the file', async () => {
    const home = makeHome();
    writeConfig(home);
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(
      (await runCli(['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin', '--home', home], env, CANARY)).code,
    ).toBe(0);
    const storePath = join(home, 'data', 'store.json');
    const text = readFileSync(storePath, 'utf8');
    writeFileSync(storePath, text.slice(0, text.length / 2));
    const before = snapshot(join(home, 'data'));

    const result = await startFails(home, env);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('store.json');
    expect(snapshot(join(home, 'data'))).toEqual(before);
    expect(result.stderr + result.stdout).not.toContain(CANARY);
  });
});
