// An agent's subscription login as a login_capture grant (docs/credentials.md, login capture): the
// agent's token endpoints watched, its access token resolved where it sends it and nowhere else.
// capture.resolve is always given, never left to its defaults (the access token in Authorization on
// every path of every host the grant covers, the token endpoints' hosts included): each position
// names its host and path, as the target does (targets.ts). The refresh token resolves only as the
// `refresh_token` member of a refresh at a watched endpoint, whatever the positions say.

import { KeywayError } from '../../errors/index.ts';
import type { AgentTarget, CapturedLogin } from './targets.ts';

/** The agent's login, or a refusal naming why keyway cannot own it. */
export function capturedLogin(target: AgentTarget): CapturedLogin {
  const { login } = target;
  if (!login.capturable) throw new KeywayError('usage', `${target.title}'s login cannot be owned by keyway: ${login.reason}`);
  return login;
}

/**
 * The grant that captures the agent's login. `agent`: the keyway agent that logs in and later runs
 * it (the captured tokens are that agent's alone); absent, whoever the grant is given to.
 */
export function loginGrantInput(target: AgentTarget, grantId: string, agent: string | undefined): Record<string, unknown> {
  const login = capturedLogin(target);
  return {
    id: grantId,
    type: 'login_capture',
    domains: [...new Set(login.bearer.map((b) => b.host))],
    ...(agent === undefined ? {} : { agent }),
    capture: {
      endpoints: login.endpoints.map(({ host, path }) => ({ host, path })),
      ...(login.pass === undefined ? {} : { pass: { fields: [...login.pass] } }),
      resolve: resolvePositions(login),
    },
    labels: { 'coding-agent': target.name },
  };
}

/** Authorization on each host and path the login's access token goes to, then the target's other positions. */
function resolvePositions(login: CapturedLogin): Array<Record<string, unknown>> {
  const bearer = login.bearer.flatMap(({ host, paths }) => paths.map((path) => ({ in: 'header', name: 'authorization', host, path })));
  const other = (login.resolve ?? []).map((r) => ({ ...r, ...(r.fields ? { fields: [...r.fields] } : {}) }));
  return [...bearer, ...other];
}
