import { countModelAnswer } from './model-exchange.ts';
import type { CloseStage } from './hooks.ts';

/**
 * Model traffic: what the model said it used (or, cut short, what was delivered) goes on the audit
 * line and into the spend ledger, before the line is written (model-exchange.ts).
 */
export const modelCount: CloseStage = {
  name: 'model-count',
  run(request, closed) {
    if (request.model !== undefined)
      countModelAnswer(request.model, closed.answerCompleted, request.draft.event, request.conn.spending.spend, request.conn.decisions.now());
  },
};
