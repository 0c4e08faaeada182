import { KeywayError } from '../../errors/index.ts';
import type { OAuth2Material, SecretMaterial } from '../material.ts';
import { bearerInjector, configuredInjector } from '../injectors/index.ts';
import { blank, type GrantKind, issued, noSettings, type ObjectInput } from './kind.ts';

// oauth2 and client_credentials: tokens from a provider's token endpoint, refreshed by keyway
// (providers/oauth-tokens.ts). The material is what the user gave: a refresh or access token and
// maybe the client, or a client id and secret.

/** Any field present must be non-blank (an empty clientId or refreshToken would be sent as is). */
const usable = (material: SecretMaterial): boolean => typeof material === 'object' && !Object.values(material).some(blank);

function scopesOf(type: string, { obj }: ObjectInput): string[] | undefined {
  const scopes = obj['scopes'] ?? (typeof obj['scope'] === 'string' ? String(obj['scope']).split(' ') : undefined);
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === 'string'))) {
    throw new KeywayError('usage', `${type} secret: "scopes" must be a list of strings`);
  }
  return scopes as string[] | undefined;
}

/** expiresAt, as epoch milliseconds or an ISO date (NaN when the date does not parse); undefined when absent. */
function expiresAtOf(type: string, { obj }: ObjectInput): number | undefined {
  const expiresAt = obj['expiresAt'];
  if (expiresAt !== undefined && typeof expiresAt !== 'number' && typeof expiresAt !== 'string') {
    throw new KeywayError('usage', `${type} secret: "expiresAt" must be epoch milliseconds or an ISO date`);
  }
  return expiresAt === undefined ? undefined : typeof expiresAt === 'number' ? expiresAt : Date.parse(expiresAt);
}

export const oauth2: GrantKind<'oauth2'> = {
  type: 'oauth2',
  shape: 'an oauth2 secret is a JSON object {"refreshToken" or "accessToken","clientId"?,"clientSecret"?,"expiresAt"?,"scopes"?}',
  object: (input) => {
    const { str } = input;
    const scopes = scopesOf('oauth2', input);
    const expiresMs = expiresAtOf('oauth2', input);
    const material: OAuth2Material = {
      clientId: str('clientId', false),
      clientSecret: str('clientSecret', false),
      refreshToken: str('refreshToken', false),
      accessToken: str('accessToken', false),
      expiresAt: Number.isFinite(expiresMs) ? expiresMs : undefined,
      scopes,
    };
    if (!material.refreshToken && !material.accessToken) throw new KeywayError('usage', 'oauth2 secret: needs "refreshToken" or "accessToken"');
    return material;
  },
  usable,
  credential: issued,
  injector: (inject) => configuredInjector(inject) ?? bearerInjector(),
  compile: noSettings,
  oauth: { consented: true, clientOnly: false },
  // The config's text is a refresh or access token, taken as it is.
  parsesConfigSecret: false,
};

export const clientCredentials: GrantKind<'client_credentials'> = {
  type: 'client_credentials',
  shape: 'a client_credentials secret is a JSON object {"clientId","clientSecret"}',
  object: (input) => {
    const scopes = scopesOf('client_credentials', input);
    expiresAtOf('client_credentials', input); // checked, as for oauth2; a client's secret keeps no token
    const { str } = input;
    return { clientId: str('clientId', true)!, clientSecret: str('clientSecret', true)!, scopes };
  },
  usable,
  credential: issued,
  injector: (inject) => configuredInjector(inject) ?? bearerInjector(),
  compile: noSettings,
  oauth: { consented: false, clientOnly: true },
  parsesConfigSecret: false,
};
