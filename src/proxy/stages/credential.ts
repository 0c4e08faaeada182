import type { HeadStage } from './request.ts';

/** The grant's credential, valid now: an OAuth token is refreshed first when due, a secret command run when its cache is out (single flight). */
export const credential: HeadStage = {
  name: 'credential',
  injected: true,
  run(request) {
    const grant = request.grant!;
    // Said on the line whether or not the secret can be had (a failing command's line says cmd).
    request.draft.event.secret_source = grant.secretSource ?? 'store';
    return request.conn.issuing.credentials.get(grant, request.conn.target.host).then((issued) => {
      request.draft.event.refreshed = issued.refreshed;
      request.issued = issued;
    });
  },
};
