import { KeywayError } from '../../../errors/index.ts';
import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import type { OAuth2Material } from '../../material.ts';
import { type GrantKind, noSettings } from '../kind.ts';
import { expiresAtOf, scopesOf, usable } from '../oauth-material.ts';

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
  issuer: { by: 'oauth', consented: true, clientOnly: false },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  compile: noSettings,
  // The config's text is a refresh or access token, taken as it is.
  parsesConfigSecret: false,
};
