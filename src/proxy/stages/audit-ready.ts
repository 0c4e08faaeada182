import { ProxyError } from '../../errors/index.ts';
import type { HeadStage } from './request.ts';

/** Nothing is sent while the audit log cannot be written: fail closed. */
export const auditReady: HeadStage = {
  name: 'audit-ready',
  injected: false,
  run({ conn }) {
    if (!conn.records.audit.healthy) {
      throw new ProxyError('audit_unavailable', 'the audit log cannot be written; nothing is sent until it can', {
        hint: 'check free disk space and the permissions of the audit path',
      });
    }
  },
};
