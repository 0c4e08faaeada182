import { KeywayError } from '../../../errors/index.ts';
import { configuredInjector } from '../../injectors/index.ts';
import { asToken, type GrantKind, noSettings, textUsable } from '../kind.ts';
import { oneLine } from '../one-line.ts';

export const apiKey: GrantKind<'api_key'> = {
  type: 'api_key',
  shape: 'an api_key secret is one non-empty line',
  line: (text) => oneLine('api_key', text),
  usable: textUsable,
  issuer: { by: 'material', credential: asToken, refetchReplays: true },
  wire: {
    by: 'inject',
    injector: (inject) => {
      const configured = configuredInjector(inject);
      if (!configured) throw new KeywayError('usage', 'an api_key grant needs --header/--format, --query or --body');
      return configured;
    },
  },
  compile: noSettings,
  parsesConfigSecret: false,
};
