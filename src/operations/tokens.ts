import { Renewer } from '../credentials/issuing/renewer.ts';
// Refresh now and revoke, for `keyway refresh|revoke` and the admin API. A running proxy passes its
// own token manager and token-endpoint client (TokenTools), so a refresh asked for over the API
// joins the proxy's single flight for that grant; the command line makes a short-lived pair, which
// shares the cross-process refresh lock with any running proxy.

import { resolveFromHome, type Config } from '../config/index.ts';
import { mintedToken, noSecret, oauthSecretNeverSet } from '../credentials/credential-source.ts';
import { grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import { KINDS, type MaterialIssuer, oauthMaterialOf, type RenewContext } from '../credentials/types/index.ts';
import type { Grant } from '../credentials/grant.ts';
import { buildGrants } from '../credentials/grant-table.ts';
import { oauthStateId, type OAuthState } from '../credentials/issuing/oauth-state.ts';
import { tokenManagerFor } from '../credentials/providers/config-tokens.ts';
import { staticCredential } from '../credentials/providers/static.ts';
import type { TokenManager } from '../credentials/issuing/oauth-tokens.ts';
import { findProvider, tokenEndpointFor, registeredEndpoint } from '../credentials/providers/provider-registry.ts';
import { KeywayError } from '../errors/index.ts';
import type { Dispatcher } from '../net/undici.ts';
import { revokeToken } from '../oauth/revoke.ts';
import { MintedTokens } from '../credentials/issuing/minted-tokens.ts';
import { createResolver } from '../egress/resolve.ts';
import { createUpstream } from '../egress/upstream.ts';
import { egressSettings } from '../egress/egress-settings.ts';
import type { Services } from '../open-home.ts';
import { usage } from './fields.ts';

/** A running proxy's token manager, what it renews with, and the client it reaches token endpoints with. */
export interface TokenTools {
  tokens: TokenManager;
  /** For a credential renewed from a grant's key (aws_sigv4's assume_role). */
  renewing: RenewContext;
  /** Tokens minted from a grant's key (github_app, google_service_account). */
  minted: MintedTokens;
  dispatcher: Dispatcher;
}

export interface TokenContext {
  services: Pick<Services, 'config' | 'store' | 'paths'>;
  /** For the config's env: references (grant secrets, provider client secrets). */
  env: NodeJS.ProcessEnv;
  /** The running proxy's; absent (the command line), a pair is made for this call and closed after. */
  tools?: TokenTools | undefined;
}

/**
 * How the command line reaches token, device and revocation endpoints: like the proxy reaches
 * upstreams (proxy.hosts, the system CAs plus proxy.upstream_ca). Close it when done.
 */
export function endpointDispatcher(config: Config, env: NodeJS.ProcessEnv): Dispatcher {
  return createUpstream({
    resolve: createResolver(config.proxy.hosts),
    extraCaFiles: config.proxy.upstream_ca.map((p) => resolveFromHome(config, p)),
    headersTimeoutMs: config.oauth.token_timeout,
    // egress.proxy: the command line's token requests go where the proxy's would.
    egress: egressSettings(config, env),
  }).dispatcher;
}

function grantFor(context: TokenContext, id: string): Grant {
  const { config, store } = context.services;
  const grant = buildGrants(config, store, context.env).get(id);
  if (!grant) throw new KeywayError('not_found', `no grant "${id}"`);
  return grant;
}

/** Runs `use` with the running proxy's tools, or with a pair made for it and closed after. */
async function withTools<T>(context: TokenContext, use: (tools: TokenTools) => Promise<T>): Promise<T> {
  if (context.tools) return use(context.tools);
  const { config, store, paths } = context.services;
  const dispatcher = endpointDispatcher(config, context.env);
  try {
    // One Renewer for every kind, as the proxy has (app/parts.ts).
    const renewing = { store, lockDir: paths.locksDir, timeoutMs: config.oauth.token_timeout, dispatcher };
    const renewer = new Renewer(renewing);
    return await use({
      tokens: tokenManagerFor(config, { ...renewing, env: context.env }, renewer),
      renewing: { renewer, store, dispatcher, timeoutMs: config.oauth.token_timeout },
      minted: new MintedTokens(renewing, renewer),
      dispatcher,
    });
  } finally {
    await dispatcher.close();
  }
}

export interface Refreshed {
  grant: string;
  refreshed: true;
  token_expires_at: string | null;
}

/** Refreshes grant `id`'s access token now, whatever its expiry, and stores the result. Never returns a token. */
export async function refreshGrant(context: TokenContext, id: string): Promise<Refreshed> {
  const grant = grantFor(context, id);
  const issuer = KINDS[grant.type].issuer;
  if (issuer.by === 'material' && issuer.renews?.renewsFor(grant)) return renewFromKey(context, grant, issuer);
  if (issuer.by === 'minted') return mintAgain(context, grant);
  if (issuer.by !== 'oauth') {
    throw usage(`grant "${id}" is ${grant.type}: ${refreshableTypes()}`);
  }
  return withTools(context, async ({ tokens }) => {
    // Nothing to refresh with yet: say so, rather than let the refresh fail and mark it needs_reconnect.
    if (oauthSecretNeverSet(grant, tokens)) throw noSecret(grant);
    await tokens.refreshNow(grant);
    const { expiresAt } = tokens.state(grant);
    return { grant: id, refreshed: true, token_expires_at: expiresAt ? new Date(expiresAt).toISOString() : null };
  });
}

/** A credential renewed from the grant's key (an aws_sigv4 grant's role: STS AssumeRole) now, under the same lock and single flight as the proxy's. */
async function renewFromKey(context: TokenContext, grant: Grant, issuer: MaterialIssuer): Promise<Refreshed> {
  if (grant.secretCommand !== undefined || grant.secretFrom !== undefined)
    throw usage(`grant "${grant.id}"'s key is got on use (a secret command or source): the running proxy renews its role when due`);
  const key = staticCredential(grant.type, grant.material);
  if (key === undefined) throw noSecret(grant);
  return withTools(context, async ({ renewing }) => {
    const expiresAt = await issuer.renews!.renewNow(grant, key, renewing);
    return { grant: grant.id, refreshed: true, token_expires_at: new Date(expiresAt).toISOString() };
  });
}

/** A minted grant: a new token now, under the same lock and single flight as the proxy's mints. */
async function mintAgain(context: TokenContext, grant: Grant): Promise<Refreshed> {
  if (grant.secretCommand !== undefined) throw usage(`grant "${grant.id}"'s key is printed by a command: the running proxy mints its tokens when due`);
  if (grant.secretFrom !== undefined) throw usage(`grant "${grant.id}"'s key is held by a secret source: the running proxy mints its tokens when due`);
  return withTools(context, async ({ minted }) => {
    let expiresAt: number | undefined;
    await mintedToken(grant, grant.material, async (minter, spec) => {
      const token = await minted.mintNow(grant, minter, spec);
      expiresAt = minted.state(grant, minter, spec)?.expiresAt;
      return token;
    });
    return { grant: grant.id, refreshed: true, token_expires_at: expiresAt ? new Date(expiresAt).toISOString() : null };
  });
}

export interface Revoked {
  grant: string;
  status: 'revoked';
  /** What the provider said, in words (never a token). */
  provider: string;
}

/**
 * Revokes grant `id`'s refresh and access tokens at the provider where it has a revocation
 * endpoint (RFC 7009), then marks the grant revoked either way: it stops injecting at once, in
 * every running proxy.
 */
export async function revokeGrant(context: TokenContext, id: string): Promise<Revoked> {
  const grant = grantFor(context, id);
  const { config, store } = context.services;
  let atProvider = 'no revocation endpoint: revoked in keyway only';
  if (KINDS[grant.type].issuer.by === 'oauth') {
    const provider = grant.provider === undefined ? undefined : findProvider(config, grant.provider, context.env);
    const live = store.get<OAuthState>(oauthStateId(id));
    const material = oauthMaterialOf(grant.type, grant.material);
    const refreshToken = live?.refreshToken ?? (material && 'refreshToken' in material ? material.refreshToken : undefined);
    const accessToken = live?.accessToken ?? material?.accessToken;
    // A client keyway registered itself (connect --mcp) keeps its server's endpoints with it.
    const registered = registeredEndpoint(grant);
    const server = material && 'server' in material ? material.server : undefined;
    const revokeUrl = registered ? server?.revokeUrl : provider?.revokeUrl;
    const endpointOf = registered ? () => registered : provider ? () => tokenEndpointFor(provider, grant) : undefined;
    if (endpointOf && revokeUrl) {
      atProvider = await withTools(context, async ({ dispatcher }) => {
        const endpoint = endpointOf();
        const results = [];
        // Revoking the refresh token ends the whole grant at most providers; the access token too, for those that don't.
        if (refreshToken) results.push(await revokeToken(revokeUrl, endpoint, refreshToken, 'refresh_token', dispatcher));
        if (accessToken) results.push(await revokeToken(revokeUrl, endpoint, accessToken, 'access_token', dispatcher));
        const failed = results.find((r) => !r.ok);
        return failed ? `the provider refused: ${failed.detail}; revoked in keyway anyway` : 'revoked at the provider';
      });
    }
  }
  await store.update((draft) => {
    const stored = draft.get<StoredGrant>(grantRecordId(id));
    if (stored) draft.set(grantRecordId(id), { ...stored, status: 'revoked', updated_at: new Date().toISOString() } satisfies StoredGrant);
    // Config grants have no stored record: the live state carries the status for them.
    draft.set(oauthStateId(id), { status: 'revoked' } satisfies OAuthState);
  });
  return { grant: id, status: 'revoked', provider: atProvider };
}

/**
 * Which grants refresh, from the registered types' issuers (a hand-kept list missed the newer
 * types): OAuth and minted types, and a type whose key renews a credential where its grant asks.
 */
function refreshableTypes(): string {
  const kinds = Object.values(KINDS);
  const issued = kinds.filter((kind) => kind.issuer.by === 'oauth' || kind.issuer.by === 'minted').map((kind) => kind.type);
  const renewing = kinds.filter((kind) => kind.issuer.by === 'material' && kind.issuer.renews !== undefined).map((kind) => kind.type);
  const renewText = renewing.length > 0 ? `, and ${renewing.join(', ')} grants that renew from their key (assume_role)` : '';
  return `only ${issued.join(', ')} grants${renewText}, refresh`;
}
