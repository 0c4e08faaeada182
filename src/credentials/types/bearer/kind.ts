import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { asToken, type GrantKind, noSettings, textUsable } from '../kind.ts';
import { oneLine } from '../one-line.ts';

export const bearer: GrantKind<'bearer'> = {
  type: 'bearer',
  shape: 'a bearer secret is one non-empty line',
  line: (text) => oneLine('bearer', text),
  usable: textUsable,
  issuer: { by: 'material', credential: asToken, refetchReplays: true },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  compile: noSettings,
  parsesConfigSecret: false,
};
