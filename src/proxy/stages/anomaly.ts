import { settingsFor } from '../../anomaly/core/resolve.ts';
import { hourOfWeek } from '../../anomaly/core/hours.ts';
import { pathClass } from '../../anomaly/core/path-class.ts';
import type { Seen } from '../../anomaly/core/record.ts';
import type { AnomalySettings, Signal } from '../../anomaly/core/settings.ts';
import { ProxyError } from '../../errors/index.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/** What stage anomaly-taught needs once a person said yes to a held request. */
export interface AnomalyHold {
  seen: Seen;
  signals: readonly Signal[];
  /** The agent's anomaly settings as judged. */
  tuning: AnomalySettings;
  at: Date;
}

/**
 * Unusual use (config anomaly:, src/anomaly/): the request judged against the agent's own history.
 * After the limits and budgets (a refused request is not counted), before the approval stage, which
 * holds it under `hold`. Nothing fired: counted (its burst window) and, if it shows something new
 * (a signal turned off), learned. `alert`: the signals on the audit line, told through
 * approvals.notify, learned; it goes on. `hold`: a person's yes first, bound to the exact body
 * (the approvals desk); only that yes teaches the history (stage anomaly-taught); a no or no
 * answer teaches nothing. Holds waiting per agent are bounded (anomaly.max_holds_per_agent).
 */
export const anomaly: HeadStage = {
  name: 'anomaly',
  injected: true,
  run(request) {
    const config = request.conn.decisions.config.anomaly;
    const agent = request.conn.agent;
    const settings = settingsFor(config, agent.id, agent.parents ?? []);
    if (settings.mode === 'off') return;
    const now = request.conn.decisions.now();
    const seen = seenOf(request, settings, now);
    const book = request.conn.anomalies.anomaly;
    const signals = book.judge(agent.id, seen, settings, now);
    if (signals.length === 0) {
      book.count(agent.id, settings, now);
      if (book.wouldLearn(agent.id, seen)) void book.learn(agent.id, seen, [], settings, now).catch((err: Error) => failedToLearn(request, err));
      return;
    }
    request.draft.event.signal = signals.map((s) => ({ name: s.name, why: s.why }));
    if (settings.mode === 'alert') {
      book.count(agent.id, settings, now);
      book.alert(alertPayload(request, seen, signals, now), agent.id);
      // An alert teaches what was new, never a burst: only a person's yes raises the baseline past its caps.
      const taught = signals.filter((s) => s.name !== 'burst');
      return book.learn(agent.id, seen, taught, settings, now).catch((err: Error) => failedToLearn(request, err));
    }
    hold(request, seen, signals, settings, config.wait, config.max_holds_per_agent, now);
    return undefined;
  },
};

function hold(request: StagedRequest, seen: Seen, signals: readonly Signal[], settings: AnomalySettings, waitMs: number, most: number, now: Date): void {
  const agent = request.conn.agent.id;
  const waiting = request.conn.anomalies.anomaly.holdsWaiting(agent);
  if (waiting >= most) {
    throw new ProxyError('rate_limited', `agent "${agent}" has ${waiting} unusual requests waiting for a person already (anomaly.max_holds_per_agent)`, {
      grant: request.grant!.id,
      hint: 'a person must answer the approvals already waiting (keyway approvals list)',
      retryAfter: 30,
    });
  }
  const named = `anomaly: ${signals.map((s) => s.name).join(', ')}`;
  const rule = request.approvalRule;
  // A rule that asks already: one question, naming both; its wait and window hold.
  request.approvalRule =
    rule === undefined ? { rule: named, waitMs, windowMs: 0, paths: undefined } : { ...rule, rule: `${rule.rule}; ${named}`.slice(0, 256) };
  request.anomaly = { seen, signals, tuning: settings, at: now };
}

function seenOf(request: StagedRequest, settings: AnomalySettings, now: Date): Seen {
  const { host, port } = request.draft.event;
  return {
    grant: request.grant!.id,
    method: (request.req.method ?? 'GET').toUpperCase(),
    host: `${host}:${port}`,
    pathClass: pathClass(request.path),
    hourOfWeek: settings.off_hours === undefined ? undefined : hourOfWeek(now, settings.off_hours.tz),
  };
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
