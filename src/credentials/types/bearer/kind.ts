import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { asToken, type GrantKind, noSettings, textUsable } from '../kind.ts';
import { oneLine } from '../one-line.ts';

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
