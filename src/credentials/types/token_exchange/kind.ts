import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { clientSecretOf } from '../client-material.ts';
import type { GrantKind } from '../kind.ts';
import { type ExchangeSettings, exchangeIssuer, tokenTypeUri } from './issuer.ts';

// token_exchange: the grant's secret is the client keyway exchanges tokens as ({"clientId",
// "clientSecret"}); each request's token is issued for whom it acts (issuer.ts), and goes on the
// request as a bearer token unless inject says otherwise.

export const tokenExchange: GrantKind<'token_exchange'> = {
  type: 'token_exchange',
  shape: 'a token_exchange secret is a JSON object {"clientId","clientSecret"}: the client keyway exchanges tokens as',
  ...clientSecretOf('token_exchange'),
  issuer: exchangeIssuer,
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  describe: (g, injector) => {
    const audience = typeof g.audience === 'string' ? [g.audience] : (g.audience ?? []);
    const subject = g.subject === 'identity' ? "the agent's identity" : 'a configured subject';
    return `${injector.describe()} (exchanged for ${subject}${audience.length > 0 ? ` to ${audience.join(' ')}` : ''})`;
  },
  compile: (g) => ({
    settings: {
      endpoint: g.token_endpoint ?? '',
      subject: g.subject === 'identity' ? 'identity' : g.subject.secret,
      subjectTokenType: tokenTypeUri(g.subject_token_type),
      audience: typeof g.audience === 'string' ? [g.audience] : (g.audience ?? []),
      resource: g.resource ?? [],
      scope: g.scope ?? [],
      requestedTokenType: g.requested_token_type === undefined ? undefined : tokenTypeUri(g.requested_token_type),
    } satisfies ExchangeSettings,
  }),
  parsesConfigSecret: true,
};
