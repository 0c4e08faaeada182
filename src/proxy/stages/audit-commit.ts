import type { CloseStage } from './hooks.ts';

/** The exchange's audit line, written once the stages before it have put their fields on it (audit-event.ts). */
export const auditCommit: CloseStage = {
  name: 'audit-commit',
  run(request) {
    request.draft.commit(request.conn.records);
  },
};
