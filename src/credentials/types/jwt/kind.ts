import { storedJwtExpiry, jwtExpiry } from '../../jwt.ts';
import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { asToken, type GrantKind, noSettings, textUsable } from '../kind.ts';
import { oneLine } from '../one-line.ts';

export const jwt: GrantKind<'jwt'> = {
  type: 'jwt',
  shape: 'a jwt secret is one non-empty line',
  line: (text) => {
    const token = oneLine('jwt', text).trim();
    jwtExpiry(token); // a token that is not a JWT, or whose exp cannot be read, is refused here
    return token;
  },
  usable: textUsable,
  // Not replayed after a 401 when a command prints it: a JWT refused is expired or revoked, as the command printed it.
  issuer: { by: 'material', credential: asToken, refetchReplays: false },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  compile: noSettings,
  // Its clock is its token's exp: listed, and never sent past it (credential-source.ts).
  expiresAt: (material) => (typeof material === 'string' ? storedJwtExpiry(material) : undefined),
  parsesConfigSecret: true,
};
