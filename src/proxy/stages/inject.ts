import type { IssuedCredential } from '../../credentials/issuing/issued-credential.ts';
import type { Grant } from '../../credentials/grant.ts';
import { echoableSecrets, isSigningKey } from '../../credentials/echoable.ts';
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
    // A capture grant's request that carried no placeholder (a login itself) went as it came.
    const { credential } = request.issued!;
    request.draft.event.decision = credential.kind === 'captured' && credential.values.length === 0 ? 'tunnel' : 'inject';
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
 * A signing key of which only signatures go upstream (echoableSecrets: none) has nothing an answer
 * could echo, in slices or whole: Range stays (object-store clients download large objects in ranges).
 */
function neverSent(issued: IssuedCredential): boolean {
  const { credential } = issued;
  return isSigningKey(credential) && echoableSecrets(credential).length === 0;
}
