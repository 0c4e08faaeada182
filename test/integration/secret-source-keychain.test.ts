// A grant's secret in the desktop's keyring (secret_sources type keychain, issue 49): a real GNOME
// Keyring, unlocked in a D-Bus session this test starts, with keyway (`keyway start`, a real process)
// inside that session reading it through libsecret's secret-tool. The upstream takes only the value
// the keyring holds now.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runProcess, TEST_HOSTS } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const FIRST = `${CANARY}-keyring-first`;
const SECOND = `${CANARY}-keyring-second`;

describe('a grant secret in the desktop keyring (Secret Service)', () => {
  let home: string;
  let env: Record<string, string>;
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let client: ProxyAgent;
  const accepted = new Set([FIRST]);
  const bodies: string[] = [];

  /** secret-tool in keyway's D-Bus session (its address written by the session's shell). */
  const secretTool = async (args: string[], stdin?: string) => {
    const bus = readFileSync(join(home, 'bus-address'), 'utf8').trim();
    return runProcess('secret-tool', args, { ...env, DBUS_SESSION_BUS_ADDRESS: bus }, stdin);
  };
  const get = async (host: string) => {
    const res = await request(`https://${host}:${upstream.port}/echo`, { dispatcher: client, signal: AbortSignal.timeout(slack(15_000)) });
    const text = await res.body.text();
    bodies.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };

  beforeAll(async () => {
    upstream = await startUpstream({ authorize: async (a) => [...accepted].some((v) => a === `Bearer ${v}`) });
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
        secret_sources: { keyring: { type: 'keychain', ttl: '1s', failure_ttl: '0s', max_stale: '0s' } },
        grants: {
          api: { type: 'bearer', domains: ['api.example.test'], secret: { from: 'keyring', id: 'keyway-test/robot' } },
          missing: { type: 'bearer', domains: ['other.example.test'], secret: { from: 'keyring', id: 'service=keyway-test account=nobody' } },
        },
      }),
    );
    // The keyring's files live under HOME: a home of the test's own.
    env = cleanEnv({ HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    const session = [
      'printf keyring-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null',
      // The daemon may still be starting its collection on a loaded machine (CI once read the first
      // request's secret as missing): store until the keyring gives the value back, a bounded number of tries.
      // Up to 32 tries (~8 s: keyway must start within 15 s after); whether it got there is written down for the test to check first.
      `ready=no; for try in $(seq 32); do ` +
        '{ printf %s "$FIRST_VALUE" | secret-tool store --label=robot service keyway-test account robot && ' +
        '[ "$(secret-tool lookup service keyway-test account robot)" = "$FIRST_VALUE" ]; } 2>/dev/null && { ready=yes; break; }; sleep 0.25; done',
      `printf %s "$ready" > "${join(home, 'keyring-ready')}"`,
      `printf %s "$DBUS_SESSION_BUS_ADDRESS" > "${join(home, 'bus-address')}"`,
      'unset FIRST_VALUE',
      'exec "$@"',
    ].join('; ');
    proxy = await startChildProxy({ cli: DIST_CLI, home, env: { ...env, FIRST_VALUE: FIRST }, wrap: ['dbus-run-session', '--', 'sh', '-c', session, 'sh'] });
    client = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'bundle.pem'), 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
    // keyway runs inside dbus-run-session, beside the session's bus and keyring: stopping it
    // leaves none of them running (they ran on for good before, keyway serving on its port).
    expect(processesWithHome(home)).toEqual([]);
    for (const text of [...bodies, proxy?.stdout() ?? '', proxy?.stderr() ?? '']) {
      expect(findLeak(text, FIRST)).toBeUndefined();
      expect(findLeak(text, SECOND)).toBeUndefined();
    }
  });

  it("the keyring's value is injected; a value changed in the keyring is used once the ttl has passed", async () => {
    // The first lookup has failed while the session's keyring was still settling (CI, under load):
    // keyway then says so and sends nothing (failure_ttl 0s, so the next request asks again). It
    // must read the value within 10 s, and fail no other way meanwhile.
    expect(readFileSync(join(home, 'keyring-ready'), 'utf8'), "the session's keyring never gave the stored value back").toBe('yes');
    let first = await get('api.example.test');
    for (let tries = 0; first.status !== 200 && tries < 40; tries++) {
      expect(first, first.text).toMatchObject({ status: 502, code: 'secret_unavailable' });
      await new Promise((r) => setTimeout(r, 250));
      first = await get('api.example.test');
    }
    if (first.status !== 200) {
      // Whether the keyring, asked from outside keyway, has the value (said as yes/no: it is a canary).
      const outside = await secretTool(['lookup', 'service', 'keyway-test', 'account', 'robot']);
      expect.fail(`${String(first.code)}: ${first.text}; secret-tool lookup outside keyway: code ${outside.code}, value found: ${outside.stdout === FIRST}`);
    }
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${FIRST}`);
    const stored = await secretTool(['store', '--label=robot', 'service', 'keyway-test', 'account', 'robot'], SECOND);
    expect(stored.code, stored.stderr).toBe(0);
    accepted.add(SECOND);
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await get('api.example.test')).status).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${SECOND}`);
  });

  it('no item with those attributes: 502 secret_unavailable saying so, nothing sent upstream', async () => {
    const before = upstream.seen.length;
    const res = await get('other.example.test');
    expect(res).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect((JSON.parse(res.text) as { error: { message: string } }).error.message).toMatch(
      /keyring: service=keyway-test account=nobody cannot give the secret: no item in the keyring has these attributes/,
    );
    expect(upstream.seen.length).toBe(before);
  });
});

/** Live processes (zombies left out) whose environment has this HOME: keyway, and the session's bus and keyring. */
function processesWithHome(home: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat[stat.lastIndexOf(')') + 2] === 'Z') continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HOME=${home}`)) {
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`);
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
