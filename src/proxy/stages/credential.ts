import type { HeadStage } from './request.ts';

/** The grant's credential, valid now: an OAuth token is refreshed first when due (single flight). */
export const credential: HeadStage = {
  name: 'credential',
  injected: true,
  run(request) {
    return request.conn.issuing.credentials.get(request.grant!).then((issued) => {
      request.draft.event.refreshed = issued.refreshed;
      request.issued = issued;
    });
  },
};
