import { ProxyError } from '../../errors/index.ts';
import { chooseGrant } from '../../policy/access.ts';
import { refuseUnmatched } from '../destination.ts';
import { GRANT_HEADER } from '../headers.ts';
import type { HeadStage } from './request.ts';

/**
 * Which grant, if any, this request uses, among those the connection's route found (decided once
 * per connection and table change, for the agent as it stands: connection.ts). None: forwarded untouched, unless proxy.unmatched
 * is deny. X-Keyway-Grant picks one when several cover the host.
 */
export const grant: HeadStage = {
  name: 'grant',
  injected: false,
  run(request) {
    const { conn, req } = request;
    // The agent as it stands now (removed, key rotated, identity unmapped: refused), not as it
    // stood when the connection signed in; its grants below are also today's.
    conn.standing();
    const route = conn.grants();
    if (route.kind === 'refuse') throw route.error;
    if (route.kind === 'unmatched') {
      refuseUnmatched(conn.decisions, conn.target);
      request.draft.event.decision = 'tunnel';
      return;
    }
    const requested = req.headers[GRANT_HEADER];
    const chosen = chooseGrant(route.candidates, Array.isArray(requested) ? requested[0] : requested);
    if (conn.scheme === 'http' && !chosen.allowHttp) {
      throw new ProxyError('insecure_upstream', `grant "${chosen.id}" is never sent over plain HTTP`, {
        grant: chosen.id,
        hint: `use https://, or set allow_http: true on grant "${chosen.id}" if the upstream has no TLS`,
      });
    }
    request.grant = chosen;
  },
};
