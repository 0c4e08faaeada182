import type { CloseStage } from './hooks.ts';

/**
 * Under a bytes quota (stage limits set request.byteQuota): what went up (stage count-body) and
 * came back, counted whether the client stayed or not.
 */
export const byteQuota: CloseStage = {
  name: 'byte-quota',
  run(request, closed) {
    const quota = request.byteQuota;
    if (quota !== undefined) request.conn.decisions.quotas.addBytes(quota.scopes, quota.sent + closed.relayed, request.conn.decisions.now());
  },
};
