import { auditUnavailable } from '../../audit/unavailable.ts';
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
    if (!conn.records.audit.reserveLine()) throw auditUnavailable(conn.records.audit, 'no-room');
    draft.reserved = true;
  },
};
