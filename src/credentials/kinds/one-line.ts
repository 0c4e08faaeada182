import type { GrantType } from '../../config/index.ts';
import { isBlankSecret } from '../../config/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { jwtExpiry, storedJwtExpiry } from '../jwt.ts';
import { bearerInjector, configuredInjector } from '../injectors/index.ts';
import { asToken, type GrantKind, noSettings, textUsable } from './kind.ts';

// The types whose secret is one line, sent as it is: bearer (Authorization: Bearer), api_key (where
// its inject settings say), jwt (a token the user has; its exp is read, and it is never sent past it).

function oneLine(type: GrantType, text: string): string {
  if (isBlankSecret(text) || /[\r\n]/.test(text)) throw new KeywayError('usage', `a ${type} secret is one non-empty line`);
  return text;
}

export const bearer: GrantKind<'bearer'> = {
  type: 'bearer',
  shape: 'a bearer secret is one non-empty line',
  line: (text) => oneLine('bearer', text),
  usable: textUsable,
  credential: asToken,
  injector: (inject) => configuredInjector(inject) ?? bearerInjector(),
  compile: noSettings,
  sendsSecret: true,
  parsesConfigSecret: false,
};

export const apiKey: GrantKind<'api_key'> = {
  type: 'api_key',
  shape: 'an api_key secret is one non-empty line',
  line: (text) => oneLine('api_key', text),
  usable: textUsable,
  credential: asToken,
  injector: (inject) => {
    const configured = configuredInjector(inject);
    if (!configured) throw new KeywayError('usage', 'an api_key grant needs --header/--format, --query or --body');
    return configured;
  },
  compile: noSettings,
  sendsSecret: true,
  parsesConfigSecret: false,
};

export const jwt: GrantKind<'jwt'> = {
  type: 'jwt',
  shape: 'a jwt secret is one non-empty line',
  line: (text) => {
    const token = oneLine('jwt', text).trim();
    jwtExpiry(token); // a token that is not a JWT, or whose exp cannot be read, is refused here
    return token;
  },
  usable: textUsable,
  credential: asToken,
  injector: (inject) => configuredInjector(inject) ?? bearerInjector(),
  compile: noSettings,
  // Its clock is its token's exp: listed, and never sent past it (credential-source.ts).
  expiresAt: (material) => (typeof material === 'string' ? storedJwtExpiry(material) : undefined),
  parsesConfigSecret: true,
};
