import type { Seen } from '../../anomaly/core/record.ts';
import type { Signal } from '../../anomaly/core/settings.ts';
import { ProxyError } from '../../errors/index.ts';
import { type AnomalyJudged, eventLoopTurn } from './anomaly-signals.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * Unusual use (config anomaly:, src/anomaly/), as stage anomaly-signals judged it. After the limits
 * and budgets (a refused request is not counted), before the approval stage, which holds it under
 * `hold`. Nothing fired: counted (its burst window) and, if it shows something new (a signal turned
 * off), learned. `alert`: the signals on the audit line, told through approvals.notify, learned
 * (never a burst); it goes on. `hold`: a person's yes first, bound to the exact body (the approvals
 * desk); only that yes teaches the history (stage anomaly-taught); a no or no answer teaches
 * nothing. Holds waiting per agent are bounded (anomaly.max_holds_per_agent).
 */
export const anomaly: HeadStage = {
  name: 'anomaly',
  injected: true,
  run(request) {
    const first = request.anomaly;
    if (first === undefined) return;
    const agent = request.conn.agent.id;
    const book = request.conn.anomalies.anomaly;
    const judged = burstJudgedNow(request, first);
    const { seen, signals, tuning: settings, at } = judged;
    if (signals.length === 0) {
      book.count(agent, settings, at);
      if (book.wouldLearn(agent, seen)) void book.learn(agent, seen, [], settings, at).catch((err: Error) => failedToLearn(request, err));
      return;
    }
    request.draft.event.signal = signals.map((s) => ({ name: s.name, why: s.why }));
    if (settings.mode === 'alert') {
      book.count(agent, settings, at);
      book.alert(alertPayload(request, seen, signals, at), agent);
      // An alert teaches what was new, never a burst: only a person's yes raises the baseline past its caps.
      const taught = signals.filter((s) => s.name !== 'burst');
      return book.learn(agent, seen, taught, settings, at).catch((err: Error) => failedToLearn(request, err));
    }
    hold(request, judged);
    return undefined;
  },
};

/**
 * The burst judged again here, in the same turn as the count: stage anomaly-signals judged before
 * the rules, and a stage between may have waited (a chunked body read under a rule's max_body, a
 * policy, a lease), while the agent's other requests were judged against the same count. Sent all
 * at once, every one of them would pass as usual; judged again now, each sees those counted before
 * it (default deny: a burst found at either moment is a burst). Signals found earlier stay.
 */
function burstJudgedNow(request: StagedRequest, judged: AnomalyJudged): AnomalyJudged {
  if (judged.tuning.burst === undefined || judged.signals.some((s) => s.name === 'burst')) return judged;
  // Nothing waited since the judging (most requests): nobody else was judged or counted meanwhile.
  if (eventLoopTurn() === judged.turn) return judged;
  const book = request.conn.anomalies.anomaly;
  const burst = book.judge(request.conn.agent.id, judged.seen, judged.tuning, judged.at).find((s) => s.name === 'burst');
  if (burst === undefined) return judged;
  const again: AnomalyJudged = { ...judged, signals: [...judged.signals, burst] };
  request.anomaly = again;
  return again;
}

function hold(request: StagedRequest, judged: AnomalyJudged): void {
  const agent = request.conn.agent.id;
  const config = request.conn.decisions.config.anomaly;
  // A quick refusal before the body is held; the bound itself is kept where the desk admits the
  // record, under the store's lock (holdsPerAgent): a parallel burst all reads 0 here.
  const waiting = request.conn.anomalies.anomaly.holdsWaiting(agent);
  if (waiting >= config.max_holds_per_agent) {
    throw new ProxyError('rate_limited', `agent "${agent}" has ${waiting} unusual requests waiting for a person already (anomaly.max_holds_per_agent)`, {
      grant: request.grant!.id,
      hint: 'a person must answer the approvals already waiting (keyway approvals list)',
      retryAfter: 30,
    });
  }
  const named = `anomaly: ${judged.signals.map((s) => s.name).join(', ')}`;
  const rule = request.approvalRule;
  // A rule that asks already: one question, naming both; its wait and window hold.
  // Fresh: a window a person gave the rule alone (or another signal) does not cover what is new now,
  // else a burst or an off hour on a windowed path would pass unasked, and teach the history too.
  const signals = judged.signals.map((s) => ({ name: s.name, why: s.why }));
  request.approvalRule =
    rule === undefined
      ? { rule: named, waitMs: config.wait, windowMs: 0, paths: undefined, fresh: true, signals, holdsPerAgent: config.max_holds_per_agent }
      : // The text is cut for display only: the question is known by askedBy and the signals (desk.ts).
        { ...rule, rule: `${rule.rule}; ${named}`.slice(0, 256), askedBy: rule.rule, fresh: true, signals, holdsPerAgent: config.max_holds_per_agent };
  judged.held = true;
}

/** What approvals.notify gets for an alert: the class of the path, never the path or its query. */
function alertPayload(request: StagedRequest, seen: Seen, signals: readonly Signal[], now: Date): Record<string, unknown> {
  const agent = request.conn.agent;
  return {
    type: 'keyway.anomaly.alert',
    alert: {
      agent: agent.id,
      ...(agent.parents !== undefined && agent.parents.length > 0 ? { chain: [...agent.parents, agent.id] } : {}),
      grant: seen.grant,
      method: seen.method,
      host: seen.host,
      path_class: seen.pathClass,
      signals,
      at: now.toISOString(),
    },
  };
}

function failedToLearn(request: StagedRequest, err: Error): void {
  request.conn.records.logger.warn({ agent: request.conn.agent.id, err: { message: err.message } }, 'anomaly: the agent history could not be written');
}
