// The soak's world, all on loopback: the bench HTTPS upstream (*.bench.test), the rotating bench
// token endpoint, and keyway as a child process with two grants: a bearer grant on *.bench.test
// (so every n<i>.bench.test is a host keyway has not seen, and mints a leaf for) and an oauth2 grant
// on the s6 host whose access token lives a few seconds (so keyway refreshes it every few seconds,
// with rotation, under load). Every host name is mapped to 127.0.0.1 by proxy.hosts.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from 'undici';
import { TLS_FIXTURES } from '../../test/helpers/fixtures.ts';
import { keywayRoute, type Route } from '../clients.ts';
import { startKeywayChild, tuningEnv, type KeywayChild } from '../keyway-child.ts';
import { MAIN_HOST, OAUTH_HOST } from '../scenarios.ts';
import type { Outcome, Target, TargetKind } from './load.ts';
import { startServers, type Servers } from './servers.ts';

export const DIST_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const newHostName = (i: number): string => `n${i}.bench.test`;

export interface WorldOptions {
  /** How many n<i>.bench.test names to map (bounds the new hosts the run may use). */
  newHosts: number;
  tokenLifetimeS: number;
  /** The keyway CLI to run: dist/cli/main.js, or undefined for src/cli/main.ts. */
  cli: string | undefined;
  /** A command to run keyway under (heaptrack); empty: none. */
  wrap?: readonly string[] | undefined;
}

export interface World {
  keyway: KeywayChild;
  /** The upstream and token endpoint (in a worker thread). */
  servers: Servers;
  route: Route;
  stop(): Promise<void>;
}

export async function startWorld(options: WorldOptions): Promise<World> {
  const secret = `kws-${randomBytes(24).toString('hex')}`;
  const client = { id: 'keyway-soak', secret: `kws-client-${randomBytes(16).toString('hex')}` };
  const seedRefreshToken = `kws-rt-${randomBytes(24).toString('hex')}`;
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const servers = await startServers({
      secret,
      clientId: client.id,
      clientSecret: client.secret,
      initialRefreshToken: seedRefreshToken,
      tokenLifetimeS: options.tokenLifetimeS,
      oauthHost: OAUTH_HOST,
    });
    stops.push(() => servers.close());
    const hosts = [MAIN_HOST, OAUTH_HOST, ...Array.from({ length: options.newHosts }, (_, i) => newHostName(i))];
    const keyway = await startKeywayChild({
      wrapper: options.wrap,
      hosts,
      domains: ['*.bench.test'],
      secret,
      upstreamCa: [TLS_FIXTURES.caPath],
      cli: options.cli,
      env: { ...tuningEnv(), SOAK_OAUTH_CLIENT_SECRET: client.secret },
      config: {
        oauth: { refresh_skew: '1s' },
        providers: { soakauth: { token_url: servers.tokenUrl, client_id: client.id, client_secret: 'env:SOAK_OAUTH_CLIENT_SECRET' } },
      },
      setup: [
        { args: ['grants', 'add', 'oauth', '--type', 'oauth2', '--domains', OAUTH_HOST, '--provider', 'soakauth'] },
        {
          args: ['secrets', 'set', 'oauth', '--stdin'],
          // Already expired: the first request refreshes it.
          stdin: JSON.stringify({
            clientId: client.id,
            clientSecret: client.secret,
            refreshToken: seedRefreshToken,
            accessToken: `kws-expired-${randomBytes(16).toString('hex')}`,
            expiresAt: Date.now() - 1000,
          }),
        },
      ],
    });
    stops.push(() => keyway.stop());
    return { keyway, servers, route: keywayRoute(keyway.url, keyway.caPem, TLS_FIXTURES.ca), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The mix: one request every `newHostEveryMs` goes to the next unseen n<i>.bench.test, one in
 * `oauthEvery` to the oauth2 grant's host, the rest to the bearer grant's main host. `firstHost`
 * lets the run go on from where the warm-up stopped, so every new host is really new.
 */
export function mix(port: number, plan: { newHostEveryMs: number; oauthEvery: number; maxNewHosts: number }, firstHost = 0) {
  let nextHost = firstHost;
  const pick = (slot: number, dueMs: number): Target => {
    if (dueMs >= (nextHost - firstHost) * plan.newHostEveryMs && nextHost < plan.maxNewHosts) {
      return { kind: 'new-host', url: `https://${newHostName(nextHost++)}:${port}/small` };
    }
    const kind: TargetKind = slot % plan.oauthEvery === plan.oauthEvery - 1 ? 'oauth' : 'inject';
    return { kind, url: `https://${kind === 'oauth' ? OAUTH_HOST : MAIN_HOST}:${port}/small` };
  };
  return { pick, hostsUsed: () => nextHost };
}

const OK: Outcome = { ok: true };

/** One small GET through keyway; any answer but 200 with the upstream's JSON is an error, named by kind. */
export function sender(route: Route, dispatcher: Dispatcher): (target: Target) => Promise<Outcome> {
  return async (target) => {
    try {
      const res = await request(target.url, { dispatcher, headers: route.headers() });
      if (res.statusCode !== 200) {
        const code = res.headers['x-keyway-error'];
        await res.body.dump();
        return { ok: false, error: `${target.kind}: status ${res.statusCode}${code ? ` ${String(code)}` : ''}` };
      }
      const body = (await res.body.json()) as { ok?: unknown };
      return body.ok === true ? OK : { ok: false, error: `${target.kind}: unexpected body` };
    } catch (err) {
      const e = err as { code?: unknown; name?: unknown };
      return { ok: false, error: `${target.kind}: ${typeof e.code === 'string' ? e.code : String(e.name)}` };
    }
  };
}
