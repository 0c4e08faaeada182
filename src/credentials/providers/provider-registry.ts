import type { Config, ProviderConfig } from '../../config/index.ts';
import { readSecretRef } from '../../config/index.ts';
import type { OAuthGrantRef } from '../grant-ref.ts';
import type { ClientCredentialsMaterial, OAuth2Material } from '../material.ts';
import { findPreset, PROVIDER_PRESETS, type ProviderPreset } from './presets.ts';
import type { TokenEndpoint } from '../issuing/token-endpoint.ts';

/** A provider as keyway uses it: a preset, or one from the config (which wins on a name clash). */
export interface Provider {
  slug: string;
  source: 'preset' | 'config';
  authorizeUrl: string | undefined;
  tokenUrl: string;
  revokeUrl: string | undefined;
  deviceAuthorizationUrl: string | undefined;
  scopes: readonly string[];
  domains: readonly string[];
  clientId: string | undefined;
  clientSecret: string | undefined;
  clientAuth: 'basic' | 'body';
  tokenBody: 'form' | 'json';
  extraParams: Readonly<Record<string, string>>;
  authorizeParams: Readonly<Record<string, string>>;
  redirectPort: number | undefined;
  /** Where refresh_token requests go when not the token URL (Figma). */
  refreshUrl: string | undefined;
  /** How scopes are joined in the consent URL: ' ' (RFC 6749) or ',' (Slack, Linear, Strava). */
  scopeSeparator: ' ' | ',';
}

export function findProvider(config: Config, name: string, env: NodeJS.ProcessEnv): Provider | undefined {
  const configured = config.providers[name];
  if (configured) return fromConfig(name, configured, config, env);
  const preset = findPreset(name);
  return preset ? fromPreset(preset.slug, preset.preset) : undefined;
}

export function providerNames(config: Config): string[] {
  return [...new Set([...Object.keys(config.providers), ...Object.keys(PROVIDER_PRESETS)])].sort();
}

function fromConfig(slug: string, p: ProviderConfig, config: Config, env: NodeJS.ProcessEnv): Provider {
  let clientSecret: string | undefined;
  if (p.client_secret) {
    try {
      clientSecret = readSecretRef(p.client_secret, env, config.home);
    } catch {
      clientSecret = undefined; // reported when a token request needs it
    }
  }
  return {
    slug,
    source: 'config',
    authorizeUrl: p.authorize_url,
    tokenUrl: p.token_url,
    revokeUrl: p.revoke_url,
    deviceAuthorizationUrl: p.device_authorization_url,
    scopes: p.scopes,
    domains: p.domains.map((d) => d.text),
    clientId: p.client_id,
    clientSecret,
    clientAuth: p.client_auth,
    tokenBody: p.token_body,
    extraParams: p.extra_params,
    authorizeParams: {},
    redirectPort: undefined,
    refreshUrl: undefined,
    scopeSeparator: ' ',
  };
}

function fromPreset(slug: string, p: ProviderPreset): Provider {
  return {
    slug,
    source: 'preset',
    authorizeUrl: p.authorize_url,
    tokenUrl: p.token_url,
    revokeUrl: p.revoke_url,
    deviceAuthorizationUrl: p.device_authorization_url,
    scopes: p.scopes,
    domains: p.domains,
    clientId: undefined,
    clientSecret: undefined,
    clientAuth: p.client_auth,
    tokenBody: p.token_body,
    extraParams: p.extra_params,
    authorizeParams: p.authorize_params,
    redirectPort: p.redirect_port,
    refreshUrl: p.refresh_url,
    scopeSeparator: p.scope_separator ?? ' ',
  };
}

/** The token endpoint for a grant: its provider's, with the grant's own client (falling back to the provider's). */
export function tokenEndpointFor(provider: Provider, grant: Pick<OAuthGrantRef, 'material'>): TokenEndpoint {
  const m = (grant.material && typeof grant.material === 'object' ? grant.material : {}) as OAuth2Material | ClientCredentialsMaterial;
  return {
    tokenUrl: provider.tokenUrl,
    refreshUrl: provider.refreshUrl,
    clientId: m.clientId ?? provider.clientId,
    clientSecret: m.clientSecret ?? provider.clientSecret,
    clientAuth: provider.clientAuth,
    bodyFormat: provider.tokenBody,
    extraParams: provider.extraParams,
  };
}

/**
 * A client keyway registered itself (keyway connect --mcp): its token endpoint and resource are
 * kept with it, since no provider names them. Public (no secret: the id in the body) or with the
 * secret the registration gave (HTTP Basic).
 */
export function registeredEndpoint(grant: Pick<OAuthGrantRef, 'type' | 'material'>): TokenEndpoint | undefined {
  const m = (grant.material && typeof grant.material === 'object' ? grant.material : {}) as OAuth2Material;
  if (grant.type !== 'oauth2' || !m.server) return undefined;
  return {
    tokenUrl: m.server.tokenUrl,
    refreshUrl: undefined,
    clientId: m.clientId,
    clientSecret: m.clientSecret,
    clientAuth: m.clientSecret === undefined ? 'body' : 'basic',
    bodyFormat: 'form',
    extraParams: m.server.resource ? { resource: m.server.resource } : {},
  };
}
