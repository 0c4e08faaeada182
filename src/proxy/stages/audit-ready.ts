import { auditUnavailable } from '../../audit/unavailable.ts';
import type { HeadStage } from './request.ts';

/** Nothing is sent while the audit log cannot be written: fail closed. */
export const auditReady: HeadStage = {
  name: 'audit-ready',
  injected: false,
  run({ conn }) {
    if (!conn.records.audit.healthy) throw auditUnavailable(conn.records.audit, 'down');
  },
};
