import { isBlankSecret } from '../../../config/index.ts';
import { KeywayError } from '../../../errors/index.ts';
import { basicInjector, configuredInjector } from '../../injectors/index.ts';
import type { BasicMaterial } from '../../material.ts';
import { blank, type GrantKind, noSettings, objectUsable } from '../kind.ts';

// basic: a username and password, sent as Authorization: Basic base64(user:password).

const SHAPE = 'a basic secret is username:password or a JSON object {"username","password"}';

/**
 * A basic secret written `username:password` (the first colon splits: a password may hold colons,
 * a username may not, as in RFC 7617). Messages never quote the input.
 */
function pair(text: string): BasicMaterial {
  const colon = text.indexOf(':');
  if (colon < 1 || /[\r\n]/.test(text)) throw new KeywayError('usage', SHAPE);
  const password = text.slice(colon + 1);
  if (isBlankSecret(password)) throw new KeywayError('usage', 'a basic secret needs a non-empty password (username:password)');
  return { username: text.slice(0, colon), password };
}

export const basic: GrantKind<'basic'> = {
  type: 'basic',
  shape: SHAPE,
  // The JSON form starts with {: left to `object`.
  line: (text) => (text.trimStart().startsWith('{') ? undefined : pair(text)),
  object: ({ str }) => ({ username: str('username', true)!, password: str('password', true)! }),
  usable: objectUsable<BasicMaterial>((m) => typeof m.username === 'string' && typeof m.password === 'string' && !blank(m.username) && !blank(m.password)),
  issuer: {
    by: 'material',
    credential: (m) =>
      typeof m === 'object' && 'username' in m && 'password' in m ? { kind: 'basic', username: m.username, password: m.password } : undefined,
    refetchReplays: true,
  },
  wire: {
    by: 'inject',
    injector: (inject) => {
      if (inject?.body) throw new KeywayError('usage', 'a basic grant has a username and password, not one secret to put in a body (--body)');
      return configuredInjector(inject) ?? basicInjector();
    },
  },
  compile: noSettings,
  parsesConfigSecret: true,
};
