import { loginGrantInput } from '../../src/profiles/connect/login-grant.ts';
import { type AgentTargetName, AGENT_TARGETS } from '../../src/profiles/connect/targets.ts';

/** The login_capture grant `keyway connect NAME --login` makes, as a config file's grant (its id is the key; labels are the store's). */
export function connectLoginGrant(name: AgentTargetName): Record<string, unknown> {
  const { id: _id, labels: _labels, ...grant } = loginGrantInput(AGENT_TARGETS[name], name, undefined);
  return grant;
}
