import { ProxyError } from '../../errors/index.ts';
import type { HeadStage } from './request.ts';

/**
 * Just before the credential goes on, the audit writer must promise this request's line room on
 * disk (src/audit/file/room.ts), so a disk filling up refuses requests before any line fails. No I/O:
 * the writer refreshes its figures off the request path.
 */
export const auditReservation: HeadStage = {
  name: 'audit-reservation',
  injected: true,
  run({ conn, draft }) {
    if (draft.reserved) return; // never reserve twice for one line
    if (!conn.records.audit.reserveLine()) {
      throw new ProxyError(
        'audit_unavailable',
        "the audit log cannot take this request's line (unwritable, too little room left, or its database unreachable); nothing is sent until it can",
        { hint: 'check free disk space (keyway keeps about 1 MiB in reserve), file-size limits, and the permissions of the audit path' },
      );
    }
    draft.reserved = true;
  },
};
