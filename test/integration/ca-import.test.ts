// Replicas behind one Service must present leaves from one CA, or a client that trusts the CA of the
// replica it reached first fails at the next. `keyway ca import` puts a CA made once into each
// replica's home; then a client trusting that one CA (and nothing else) is served by both, the
// credential injected. A wrong pair or a home holding another CA is refused in one line.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, runProcess } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY });

function replicaHome(): string {
  const home = makeHome();
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({
      proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { 'api.example.test': '127.0.0.1' } },
      grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } },
    }),
  );
  return home;
}

async function caOf(home: string): Promise<{ fingerprint256: string }> {
  const shown = await runCli(['ca', '--json', '--home', home], env);
  expect(shown.code, shown.stderr).toBe(0);
  return JSON.parse(shown.stdout) as { fingerprint256: string };
}

describe('keyway ca import: one CA for every replica', () => {
  let made: string;
  const replicas: Array<{ home: string; proxy: ChildProxy }> = [];
  let upstream: TestUpstream;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    made = makeHome();
    const init = await runCli(['init', '--home', made], env);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const r of replicas) await r.proxy.stop();
    await upstream?.close();
  });

  const source = () => [join(made, 'certs', 'ca.pem'), join(made, 'certs', 'ca-key.pem')];

  it('imports the CA into each replica home, and again without change when a replica restarts', async () => {
    const made256 = (await caOf(made)).fingerprint256;
    for (let i = 0; i < 2; i++) {
      const home = replicaHome();
      const first = await runCli(['ca', 'import', ...source(), '--home', home, '--json'], env);
      const again = await runCli(['ca', 'import', ...source(), '--home', home, '--json'], env);
      outputs.push(first.stdout, first.stderr, again.stdout, again.stderr);
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({ imported: true, fingerprint256: made256 });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ imported: false, fingerprint256: made256 });
      expect((await caOf(home)).fingerprint256).toBe(made256);
      replicas.push({ home, proxy: await startChildProxy({ home, env }) });
    }
  });

  it('serves a client that trusts only that CA through either replica, the credential injected', async () => {
    expect(replicas).toHaveLength(2);
    for (const { proxy } of replicas) {
      const before = upstream.seen.length;
      const curl = await runProcess(
        'curl',
        ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test:${upstream.port}/echo`],
        cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(made, 'certs', 'ca.pem') }),
      );
      outputs.push(curl.stderr);
      expect(curl.stderr).toBe('');
      expect(curl.stdout).toBe('200');
      expect(upstream.seen.slice(before).map((r) => r.headers.authorization)).toEqual([`Bearer ${CANARY}`]);
    }
  });

  it('refuses a home that holds another CA, a key that does not match, and a missing file argument, each in one line', async () => {
    const other = replicaHome();
    expect((await runCli(['init', '--home', other], env)).code).toBe(0);
    const before = (await caOf(other)).fingerprint256;
    const replace = await runCli(['ca', 'import', ...source(), '--home', other], env);
    expect(replace.code).toBe(1);
    expect(replace.stderr).toMatch(/already holds another CA .*Move ca\.pem and ca-key\.pem away first/);
    expect((await caOf(other)).fingerprint256).toBe(before);

    const mismatched = await runCli(['ca', 'import', join(made, 'certs', 'ca.pem'), join(other, 'certs', 'ca-key.pem'), '--home', makeHome()], env);
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toMatch(/ca-key\.pem does not match the certificate in .*ca\.pem/);

    const missing = await runCli(['ca', 'import', join(made, 'certs', 'ca.pem'), '--home', makeHome()], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/usage: keyway ca import CERT KEY/);
    for (const r of [replace, mismatched, missing]) {
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      outputs.push(r.stdout, r.stderr);
    }
  });

  it('never prints the CA key', () => {
    const keyLines = readFileSync(join(made, 'certs', 'ca-key.pem'), 'utf8')
      .split('\n')
      .filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const text of [...outputs, ...replicas.flatMap((r) => [r.proxy.stdout(), r.proxy.stderr()])]) {
      for (const line of keyLines) expect(text).not.toContain(line);
      expect(text).not.toContain(CANARY);
    }
  });
});
