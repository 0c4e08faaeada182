// How the bench sets keyway up: the host names every route uses, and keyway's child options with
// the bearer grant on *.bench.test, for s6 an oauth2 grant on its own host whose seed access
// token has already expired (so the first request refreshes it at the bench token endpoint), and
// for s8/s9 an aws_sigv4 grant on its own host, in the config (its key from the environment); for
// s10 the bench grant's /mcp is an MCP endpoint.
import { randomBytes } from 'node:crypto';
import type { AwsKey } from '../test/helpers/sigv4-verifier.ts';
import type { TestPostgres } from '../test/helpers/postgres.ts';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { AWS_REGION, AWS_SERVICE } from './aws-host.ts';
import { type KeywayChildOptions, tuningEnv } from './keyway-child.ts';
import { MCP_PATH } from './mcp.ts';
import { AWS_HOST, MAIN_HOST, OAUTH_HOST, newHost, warmHost, type Plan } from './scenarios.ts';

export interface BenchOAuthClient {
  id: string;
  secret: string;
  seedRefreshToken: string;
}

export function newOAuthClient(): BenchOAuthClient {
  return { id: 'keyway-bench', secret: `kwb-client-${randomBytes(16).toString('hex')}`, seedRefreshToken: `kwb-rt-${randomBytes(24).toString('hex')}` };
}

/** Every host name the scenarios use; all map to 127.0.0.1 in every proxy. */
export function benchHosts(plan: Plan): string[] {
  return [
    MAIN_HOST,
    OAUTH_HOST,
    AWS_HOST,
    ...Array.from({ length: plan.s5.warmupHosts }, (_, i) => warmHost(i)),
    ...Array.from({ length: plan.s5.hosts }, (_, i) => newHost(i)),
  ];
}

export interface KeywayBenchSetup {
  plan: Plan;
  secret: string;
  hosts: readonly string[];
  oauth: BenchOAuthClient;
  tokenUrl: string;
  /** --store=postgres: the request path must not touch it, so s2 should not move; s6's refreshes lock and write there. */
  database?: TestPostgres | undefined;
  profileDir?: string | undefined;
  /** --profile: open the child's inspector (bench/scenario-profiler.ts drives it). */
  inspect?: boolean | undefined;
  nodeArgs: readonly string[];
  cli?: string | undefined;
  /** The aws_sigv4 grant's key (s8, s9); no such grant without it. */
  aws?: AwsKey | undefined;
}

/** `options` with `more`'s config sections merged in, key by key (bench/ab.ts --a-config, --b-config). */
export function withConfig(options: KeywayChildOptions, more: Record<string, Record<string, unknown>>): KeywayChildOptions {
  const config: Record<string, unknown> = { ...options.config };
  for (const [section, keys] of Object.entries(more)) config[section] = { ...(config[section] as Record<string, unknown> | undefined), ...keys };
  return { ...options, config };
}

export function keywayBenchOptions(o: KeywayBenchSetup): KeywayChildOptions {
  const { database, oauth, aws } = o;
  return {
    hosts: o.hosts,
    domains: ['*.bench.test'],
    secret: o.secret,
    upstreamCa: [TLS_FIXTURES.caPath],
    cpuProfileDir: o.profileDir,
    inspect: o.inspect,
    nodeArgs: o.nodeArgs,
    cli: o.cli,
    env: {
      ...tuningEnv(),
      BENCH_OAUTH_CLIENT_SECRET: oauth.secret,
      ...(database ? { KEYWAY_DATABASE_URL: database.url } : {}),
      ...(aws ? { BENCH_AWS_KEY: JSON.stringify(aws) } : {}),
    },
    config: {
      ...(database ? { store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } } : {}),
      oauth: { refresh_skew: `${o.plan.s6.refreshSkewS}s` },
      providers: { benchauth: { token_url: o.tokenUrl, client_id: oauth.id, client_secret: 'env:BENCH_OAUTH_CLIENT_SECRET' } },
      // Not an amazonaws.com name, so the scope is the grant's own. The default max_signed_body
      // (16 MiB) holds s9's 1 MiB bodies.
      ...(aws ? { grants: { aws: { type: 'aws_sigv4', domains: [AWS_HOST], secret: 'env:BENCH_AWS_KEY', region: AWS_REGION, service: AWS_SERVICE } } } : {}),
    },
    setup: [
      // s10: /mcp on the bench grant is an MCP endpoint; every other path on it is as before.
      { args: ['grants', 'set', 'bench', '--mcp-path', MCP_PATH] },
      { args: ['grants', 'add', 'oauth', '--type', 'oauth2', '--domains', OAUTH_HOST, '--provider', 'benchauth'] },
      {
        args: ['secrets', 'set', 'oauth', '--stdin'],
        // Already expired: the first request through keyway refreshes it.
        stdin: JSON.stringify({
          clientId: oauth.id,
          clientSecret: oauth.secret,
          refreshToken: oauth.seedRefreshToken,
          accessToken: `kwb-expired-${randomBytes(16).toString('hex')}`,
          expiresAt: Date.now() - 1000,
        }),
      },
    ],
  };
}
