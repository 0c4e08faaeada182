import { onBehalfOfAgent } from '../../credentials/credential-source.ts';
import type { IssuedCredential } from '../../credentials/issuing/issued-credential.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * The grant's credential, valid now: an OAuth token is refreshed first when due, a secret command
 * run when its cache is out (single flight). A static secret comes at once, with no promise.
 */
export const credential: HeadStage = {
  name: 'credential',
  injected: true,
  run(request) {
    const grant = request.grant!;
    if (request.issued !== undefined) return; // stage capture gave it (a capture grant's)
    // Said on the line whether or not the secret can be had (a failing command's line says cmd).
    request.draft.event.secret_source = grant.secretSource ?? 'store';
    const issued = request.conn.issuing.credentials.get(grant, request.conn.target.host, onBehalfOfAgent(request.conn.agent));
    if (issued instanceof Promise) return issued.then((got) => carry(request, got));
    return carry(request, issued);
  },
};

function carry(request: StagedRequest, issued: IssuedCredential): void {
  request.draft.event.refreshed = issued.refreshed;
  if (issued.onBehalfOf !== undefined) request.draft.event.on_behalf_of = issued.onBehalfOf;
  request.issued = issued;
}
