import { compileCapture } from '../../../capture/core/settings.ts';
import { noInjector, refuseInjectSettings } from '../../injectors/index.ts';
import type { GrantKind } from '../kind.ts';

// login_capture: no secret of its own. The agent logs in itself; the tokens its token endpoint
// answers with are captured (capture/) and the placeholders it gets resolved on its
// requests to the grant's domains (proxy/stages/capture.ts).

export const loginCapture: GrantKind<'login_capture'> = {
  type: 'login_capture',
  shape: 'a login_capture grant has no secret: its tokens are captured from the agent’s own login',
  usable: () => false,
  // Its material is none: the captured tokens are resolved by the capture stage, not issued here.
  issuer: { by: 'material', credential: () => undefined, refetchReplays: false },
  wire: {
    by: 'inject',
    injector: (inject) => {
      refuseInjectSettings(inject, 'a login_capture grant resolves placeholders where the agent puts them; it takes no --header, --format or --query', true);
      return { ...noInjector(), describe: () => 'placeholders the agent got at login, resolved where it puts them' };
    },
  },
  describe: () => 'placeholders the agent got at login, resolved where it puts them',
  compile: (fields) => {
    if (fields.capture === undefined) return {};
    const owners = fields.agent !== undefined ? [fields.agent] : fields.agents;
    return { logins: compileCapture(fields.capture, owners) };
  },
  parsesConfigSecret: false,
};
