import type { StoreDraft } from '../credentials/store/draft.ts';
import { type DecisionAsked, type DecisionResult, decideApproval } from './decide.ts';
import { type ApprovalRecord, approvalRecordId } from './record.ts';

/** A person's answer, written under the store's lock: the desk (admin API, dashboard) and the CLI share it. */
export function answerInStore(
  store: { update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R> },
  id: string,
  asked: DecisionAsked,
): Promise<DecisionResult> {
  return store.update((draft) => {
    const decided = decideApproval(id, draft.get<ApprovalRecord>(approvalRecordId(id)), asked);
    if (decided.ok) draft.set(approvalRecordId(id), decided.record);
    return decided;
  });
}

/** The approval line's outcome and message for an answered record. */
export function answerLine(record: ApprovalRecord): { outcome: string; by: string; message: string | undefined } {
  const d = record.decision!;
  return {
    outcome: d.outcome === 'deny' ? 'denied' : d.outcome === 'once' ? 'approved_once' : 'approved_window',
    by: d.by,
    message: d.outcome === 'window' ? `approved until ${d.until}${d.pattern ? " for the rule's path patterns" : ''}` : d.reason,
  };
}
