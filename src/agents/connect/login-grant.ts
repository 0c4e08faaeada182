// An agent's subscription login as a login_capture grant (docs/credentials.md, login capture): the
// agent's token endpoints watched, its access token resolved where it sends it. The defaults of
// capture.resolve are what the agents do: the access token as `Authorization: Bearer` on the grant's
// domains, the refresh token only as the `refresh_token` member of a refresh at a watched endpoint.

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
    domains: [...login.domains],
    ...(agent === undefined ? {} : { agent }),
    capture: {
      endpoints: login.endpoints.map(({ host, path }) => ({ host, path })),
      ...(login.pass === undefined ? {} : { pass: { fields: [...login.pass] } }),
      ...(login.resolve === undefined ? {} : { resolve: login.resolve.map((r) => ({ ...r, ...(r.fields ? { fields: [...r.fields] } : {}) })) }),
    },
    labels: { 'coding-agent': target.name },
  };
}
