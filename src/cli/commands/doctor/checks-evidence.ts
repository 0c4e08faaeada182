// doctor's checks of what keyway reaches on its own: the identity issuers' keys (config identities:),
// the egress proxy (egress.proxy), and the key that signs audit checkpoints.

import { readFile } from 'node:fs/promises';
import { type CheckpointKey, checkpointKeyFrom, checkpointsPathFor } from '../../../audit/checkpoints/index.ts';
import { openServices } from '../../../open-home.ts';
import { checkpointSignatureValid, parseCheckpoint } from '../../../audit/checkpoints/record.ts';
import { resolveFromHome } from '../../../config/index.ts';
import { findMasterKey } from '../../../credentials/store/master-key.ts';
import { egressSettings } from '../../../egress/egress-settings.ts';
import { createResolver, guardResolver } from '../../../egress/resolve.ts';
import { createUpstream } from '../../../egress/upstream.ts';
import { IdentityVerifier } from '../../../identity-tokens/verifier.ts';
import { keywayPaths } from '../../../paths.ts';
import { EgressPolicy } from '../../../policy/egress.ts';
import type { ProxyError } from '../../../errors/index.ts';
import { errCode, type CheckResult, type Context } from './context.ts';

/** The client keyway itself would use: proxy.hosts, the egress checks, upstream_ca, egress.proxy. */
function upstreamLike(ctx: Context) {
  const { config } = ctx;
  const resolve = guardResolver(createResolver(config.proxy.hosts), new EgressPolicy(config.proxy.allow_networks));
  return {
    resolve,
    upstream: createUpstream({
      resolve,
      extraCaFiles: config.proxy.upstream_ca.map((p) => resolveFromHome(config, p)),
      headersTimeoutMs: ctx.timeoutMs,
      egress: egressSettings(config, ctx.io.env),
    }),
  };
}

/** One line per issuer: its keys fetched as the proxy fetches them, or why not. */
export async function checkIdentityIssuers(ctx: Context): Promise<CheckResult[]> {
  const { identities } = ctx.config;
  if (identities.length === 0) return [];
  let made: ReturnType<typeof upstreamLike>;
  try {
    made = upstreamLike(ctx);
  } catch (err) {
    return [{ check: 'identity issuers', status: 'fail', detail: (err as Error).message, fix: 'fix egress.proxy in the config' }];
  }
  try {
    const verifier = new IdentityVerifier(identities, { home: ctx.config.home, dispatcher: made.upstream.dispatcher });
    return (await verifier.check()).map(({ issuer, keys, error }) =>
      error === undefined
        ? { check: `identity issuer ${issuer}`, status: 'ok' as const, detail: `${keys} public signing key(s)` }
        : {
            check: `identity issuer ${issuer}`,
            status: 'fail' as const,
            detail: error,
            fix: 'check identities[].issuer and jwks; a private address needs proxy.allow_networks; keys in a file need jwks: FILE',
          },
    );
  } finally {
    await made.upstream.close();
  }
}

/** The egress proxy answers, and lets keyway CONNECT to a host a grant covers (or --url's). */
export async function checkEgressProxy(ctx: Context): Promise<CheckResult | undefined> {
  const { config } = ctx;
  if (config.egress.proxy === undefined) return undefined;
  let made: ReturnType<typeof upstreamLike>;
  try {
    made = upstreamLike(ctx);
  } catch (err) {
    return { check: 'egress proxy', status: 'fail', detail: (err as Error).message, fix: 'set egress.proxy to http(s)://host:port, or a reference to one' };
  }
  const egress = made.upstream.egress!;
  const host = ctx.target.selfCheck ? firstGrantHost(ctx) : ctx.target.host;
  const port = ctx.target.selfCheck ? 443 : ctx.target.port;
  try {
    if (host === undefined)
      return {
        check: `egress proxy ${egress.label}`,
        status: 'warn',
        detail: 'no grant names an exact host to try a CONNECT to',
        fix: 'pass --url https://HOST/ to try one',
      };
    if (!egress.covers(host)) return { check: `egress proxy ${egress.label}`, status: 'ok', detail: `${host} is on egress.no_proxy: reached directly` };
    const socket = await egress.tunnel(host, port);
    socket.destroy();
    return { check: `egress proxy ${egress.label}`, status: 'ok', detail: `CONNECT ${host}:${port} answered 200` };
  } catch (err) {
    const reason = (err as { proxyError?: ProxyError }).proxyError?.message ?? errCode(err);
    return {
      check: `egress proxy ${egress.label}`,
      status: 'fail',
      detail: reason,
      fix: 'check egress.proxy (host, port, credentials) and that the proxy allows CONNECT to this host and port',
    };
  } finally {
    await made.upstream.close();
  }
}

function firstGrantHost(ctx: Context): string | undefined {
  for (const grant of Object.values(ctx.config.grants)) {
    for (const domain of grant.domains) if (!domain.wildcard) return domain.host;
  }
  return undefined;
}

/**
 * The key that signs this home's checkpoints: as the store pins it once the master key was rotated
 * (keyway key rotate), else derived from the master key.
 */
async function homeCheckpointKey(ctx: Context, master: Buffer): Promise<CheckpointKey> {
  try {
    const services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
    try {
      return services.checkpointKey;
    } finally {
      services.store.close();
      await services.store.end?.();
    }
  } catch {
    return checkpointKeyFrom(master);
  }
}

/** The newest audit checkpoint is signed by this home's key (derived from the master key, or pinned by a rotation). */
export async function checkCheckpointKey(ctx: Context): Promise<CheckResult> {
  const check = 'audit checkpoint key';
  const paths = keywayPaths(ctx.config);
  let master: Buffer | undefined;
  try {
    master = (await findMasterKey({ dataDir: paths.dataDir, env: ctx.io.env, wrap: ctx.config.store.key }))?.key;
  } catch (err) {
    return { check, status: 'skip', detail: `the master key cannot be read (${errCode(err)})` };
  }
  if (master === undefined) return { check, status: 'skip', detail: 'no master key here (KEYWAY_MASTER_KEY, KEYWAY_MASTER_KEY_FILE or data/master.key)' };
  const key = await homeCheckpointKey(ctx, master);
  let text: string;
  try {
    text = await readFile(checkpointsPathFor(paths.audit), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { check, status: 'ok', detail: `key ${key.id}; no checkpoint signed yet (at rotation, every audit.checkpoint_interval, at stop)` };
    return { check, status: 'fail', detail: `${checkpointsPathFor(paths.audit)} cannot be read (${errCode(err)})` };
  }
  const last = text
    .trim()
    .split('\n')
    .reverse()
    .map(parseCheckpoint)
    .find((c) => c !== null);
  if (last === undefined || last === null) return { check, status: 'ok', detail: `key ${key.id}; no checkpoint signed yet` };
  if (!checkpointSignatureValid(last, key.publicKey)) {
    return {
      check,
      status: 'fail',
      detail: `the newest checkpoint (seq ${last.seq}) is not signed by this home's key ${key.id} (it names ${last.key.slice(0, 16)})`,
      fix: 'the master key changed since it was signed, or the checkpoint file was edited: run `keyway audit verify`',
    };
  }
  return { check, status: 'ok', detail: `key ${key.id}; the newest checkpoint (seq ${last.seq}, ${last.ts}) verifies` };
}
