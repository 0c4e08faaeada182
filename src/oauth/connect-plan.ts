// What connecting a provider means, whichever door it comes through (`keyway connect`, the admin
// API's POST /api/oauth/connect and /api/oauth/device): which provider, client, scopes and domains,
// which grant gets the tokens, how the code is exchanged, and how the result is stored and told.
// The flows themselves (a loopback redirect, the admin callback, device polling) differ; this does not.

import { GRANT_ID, type Config } from '../config/index.ts';
import { parseDomainPatternStrict } from '../config/domain-breadth.ts';
import { findProvider, providerNames, type Provider } from '../credentials/providers/provider-registry.ts';
import { requestToken, type TokenEndpoint, type TokenSet } from '../credentials/issuing/token-endpoint.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import { KeywayError } from '../errors/index.ts';
import type { Dispatcher } from '../net/undici.ts';
import { buildConsentUrl } from './consent-url.ts';
import { createPkce, createState } from './pkce.ts';
import { saveConnectedGrant } from './save-grant.ts';
import type { OAuthServer } from '../credentials/material.ts';

export interface ConnectRequest {
  provider: string | undefined;
  grant?: string | undefined;
  scopes?: readonly string[] | undefined;
  domains?: readonly string[] | undefined;
  /** An OAuth client other than the provider's configured one (the CLI's --client-id). */
  clientId?: string | undefined;
  /** The client's secret; unset: the configured one, unless clientId names another client. */
  clientSecret?: string | undefined;
  /**
   * What a grant already stored under the id has (connecting again): its scopes are kept and the ones
   * asked for added, so a re-consent for one more scope never drops another; its domains stay unless
   * new ones are given.
   */
  existing?: ((grantId: string) => { scopes: readonly string[]; domains: readonly string[] } | undefined) | undefined;
}

export interface ConnectPlan {
  provider: Provider;
  grantId: string;
  clientId: string;
  clientSecret: string | undefined;
  scopes: string[];
  domains: string[];
  endpoint: TokenEndpoint;
}

/** What a finished connect reports: names and times, never a token. */
export interface ConnectResult {
  grant: string;
  provider: string;
  domains: string[];
  scopes: readonly string[];
  refresh_token: 'stored' | 'none';
  token_expires_at: string | null;
}

/**
 * Checks a connect request against the config and resolves its defaults. `label` names a field in a
 * message as the caller knows it (`--grant` on the command line, `grant` in the API). Throws
 * KeywayError `usage` (or `conflict` for a grant the config defines) naming what to change.
 */
export function planConnect(config: Config, env: NodeJS.ProcessEnv, request: ConnectRequest, label: (field: string) => string = (f) => f): ConnectPlan {
  const names = () => providerNames(config).join(', ');
  if (!request.provider) throw new KeywayError('usage', `${label('provider')}: name a provider; providers: ${names()}`);
  const provider = findProvider(config, request.provider, env);
  if (!provider) throw new KeywayError('usage', `unknown provider "${request.provider.slice(0, 64)}"; providers: ${names()}`);
  const grantId = request.grant ?? provider.slug;
  if (!GRANT_ID.test(grantId)) throw new KeywayError('usage', `${label('grant')} "${grantId.slice(0, 64)}": expected a-z, 0-9 and -, up to 63 characters`);
  if (config.grants[grantId]) throw new KeywayError('conflict', `grant "${grantId}" is defined in the config; choose another ${label('grant')}`);
  const clientId = request.clientId ?? provider.clientId;
  if (!clientId) {
    throw new KeywayError(
      'usage',
      `no OAuth client for ${provider.slug}: give ${label('client_id')} (and ${label('client_secret')}), or set providers.${provider.slug}.client_id in the config`,
    );
  }
  // A client given in the request brings its own secret (or none); the configured secret belongs to the configured client.
  const clientSecret = request.clientSecret ?? (request.clientId !== undefined ? undefined : provider.clientSecret);
  const had = request.existing?.(grantId);
  const asked = request.scopes !== undefined ? [...request.scopes] : [...provider.scopes];
  const scopes = [...new Set([...(had?.scopes ?? []), ...asked])];
  const domains = request.domains !== undefined ? [...request.domains] : had !== undefined ? [...had.domains] : [...provider.domains];
  if (domains.length === 0) throw new KeywayError('usage', `provider ${provider.slug} names no API domains: give ${label('domains')}`);
  for (const d of domains) {
    const problem = parseDomainPatternStrict(d);
    if (typeof problem === 'string') throw new KeywayError('usage', `${label('domains')}: ${problem}`);
  }
  const endpoint: TokenEndpoint = {
    tokenUrl: provider.tokenUrl,
    refreshUrl: provider.refreshUrl,
    clientId,
    clientSecret,
    clientAuth: provider.clientAuth,
    bodyFormat: provider.tokenBody,
    extraParams: provider.extraParams,
  };
  return { provider, grantId, clientId, clientSecret, scopes, domains, endpoint };
}

/** A started authorization-code flow: the consent URL, and what the callback needs to finish it. */
export interface PendingAuthorization {
  consentUrl: string;
  state: string;
  verifier: string;
  redirectUri: string;
}

/** The consent URL with PKCE (S256) and an unguessable state (fresh unless given), for a redirect to `redirectUri`. */
export function beginAuthorization(plan: ConnectPlan, redirectUri: string, state: string = createState()): PendingAuthorization {
  const { provider } = plan;
  if (!provider.authorizeUrl) throw new KeywayError('usage', `provider ${provider.slug} has no authorization endpoint; use the device flow`);
  const pkce = createPkce();
  const consentUrl = buildConsentUrl({
    authorizeUrl: provider.authorizeUrl,
    clientId: plan.clientId,
    redirectUri,
    scopes: plan.scopes,
    scopeSeparator: provider.scopeSeparator,
    state,
    codeChallenge: pkce.challenge,
    extraParams: provider.authorizeParams,
  });
  return { consentUrl, state, verifier: pkce.verifier, redirectUri };
}

/** The authorization code for tokens (RFC 6749 4.1.3 with the PKCE verifier). */
export function exchangeCode(
  plan: ConnectPlan,
  pending: Pick<PendingAuthorization, 'verifier' | 'redirectUri'>,
  code: string,
  options: { dispatcher: Dispatcher; timeoutMs: number },
): Promise<TokenSet> {
  return requestToken(
    plan.endpoint,
    { grant_type: 'authorization_code', code, redirect_uri: pending.redirectUri, code_verifier: pending.verifier },
    { timeoutMs: options.timeoutMs, dispatcher: options.dispatcher },
  );
}

/**
 * Stores the tokens as the plan's grant, as `keyway connect` always has, and says what was stored.
 * `server`: a client keyway registered itself (an MCP server's authorization server), kept with it.
 */
export async function storeConnection(
  store: CredentialStore,
  plan: ConnectPlan,
  tokens: TokenSet,
  server?: OAuthServer,
  mcpPaths?: string[],
): Promise<ConnectResult> {
  const saved = await saveConnectedGrant(store, {
    server,
    mcpPaths,
    id: plan.grantId,
    type: 'oauth2',
    provider: plan.provider.slug,
    domains: plan.domains,
    clientId: plan.clientId,
    clientSecret: plan.clientSecret,
    tokens,
  });
  return {
    grant: saved.id,
    provider: plan.provider.slug,
    domains: saved.domains,
    scopes: tokens.scopes ?? plan.scopes,
    refresh_token: tokens.refreshToken ? 'stored' : 'none',
    token_expires_at: tokens.expiresAt ? new Date(tokens.expiresAt).toISOString() : null,
  };
}
