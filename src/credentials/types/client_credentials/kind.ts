import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { type GrantKind, noSettings } from '../kind.ts';
import { expiresAtOf, scopesOf, usable } from '../oauth-material.ts';

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
  issuer: { by: 'oauth', consented: false, clientOnly: true },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  compile: noSettings,
  parsesConfigSecret: false,
};
