import type { IssuedCredential } from '../../credentials/credential-source.ts';
import type { Grant } from '../../credentials/grants.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import { dropRange } from '../headers.ts';
import type { HeadStage } from './request.ts';

/** The credential goes on the outgoing request, by the grant's injector; the grant's use is stamped. */
export const inject: HeadStage = {
  name: 'inject',
  injected: true,
  run(request) {
    const grant = request.grant!;
    injectInto(request.outgoing!, grant, request.issued!);
    request.conn.issuing.grantUsed(grant.id);
    request.draft.event.decision = 'inject';
  },
};

/**
 * The injector's work, shared with the replay after a 401. Range and If-Range are dropped unless
 * the grant allows them: a window onto an echoed secret would slip past the leak guard in pieces.
 */
export function injectInto(outgoing: OutgoingRequest, grant: Grant, issued: IssuedCredential): void {
  grant.injector.apply(outgoing, issued.credential);
  if (!grant.allowRange && !neverSent(issued)) dropRange(outgoing.headers);
}

/**
 * An AWS key without a session token never goes upstream (only a signature made with it does), so
 * no answer can echo it, in slices or whole: Range stays (the CLI downloads large objects in ranges).
 */
function neverSent(issued: IssuedCredential): boolean {
  return issued.credential.kind === 'aws' && issued.credential.sessionToken === undefined;
}
