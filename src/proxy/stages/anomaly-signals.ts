import { hourOfWeek } from '../../anomaly/core/hours.ts';
import { pathClass } from '../../anomaly/core/path-class.ts';
import type { Seen } from '../../anomaly/core/record.ts';
import { settingsFor } from '../../anomaly/core/resolve.ts';
import type { AnomalySettings, Signal } from '../../anomaly/core/settings.ts';
import { overrideMethods } from '../../policy/method-override.ts';
import { overridePaths } from '../../policy/path-override.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/** A request judged against the agent's history: what the policy reads, and stages anomaly and anomaly-taught act on. */
export interface AnomalyJudged {
  seen: Seen;
  signals: readonly Signal[];
  /** The agent's anomaly settings as judged. */
  tuning: AnomalySettings;
  at: Date;
  /** Held for a person's yes (stage anomaly): only then does a yes teach (stage anomaly-taught). */
  held: boolean;
  /** The event-loop turn it was judged in (eventLoopTurn): stage anomaly judges a burst again if the request waited since. */
  turn: number;
}

let turn = 0;
let turning = false;

/**
 * A number that changes once the event loop has gone round (a setImmediate ran): two reads in the
 * same synchronous run of stages get the same number; reads on either side of a wait for I/O (a
 * body read, a store write) do not. What stage anomaly needs to know whether other requests may
 * have been judged and counted in between.
 */
export function eventLoopTurn(): number {
  if (!turning) {
    turning = true;
    setImmediate(() => {
      turn++;
      turning = false;
    }).unref();
  }
  return turn;
}

/**
 * Judges the request against the agent's own history (config anomaly:, src/anomaly/) before the
 * rules, so a Cedar policy may read the signals (context.signal). Decides nothing and counts
 * nothing: stage anomaly, after the limits, marks or holds; nothing here when anomaly is off for the agent.
 */
export const anomalySignals: HeadStage = {
  name: 'anomaly-signals',
  injected: true,
  run(request) {
    const agent = request.conn.agent;
    const settings = settingsFor(request.conn.decisions.config.anomaly, agent.id, agent.parents ?? []);
    if (settings.mode === 'off') return;
    const now = request.conn.decisions.now();
    const seen = seenOf(request, settings, now);
    const signals = request.conn.anomalies.anomaly.judge(agent.id, seen, settings, now);
    request.anomaly = { seen, signals, tuning: settings, at: now, held: false, turn: eventLoopTurn() };
    // On the line from here: a request the policy refuses for a signal says which (and `policy test` replays it).
    if (signals.length > 0) request.draft.event.signal = signals.map((s) => ({ name: s.name, why: s.why }));
  },
};

function seenOf(request: StagedRequest, settings: AnomalySettings, now: Date): Seen {
  const { host, port } = request.draft.event;
  return {
    grant: request.grant!.id,
    method: methodReading(request),
    host: `${host}:${port}`,
    // The path as the audit line has it (stage path-secret redacted the grant's secret from it), never
    // the raw one: the class goes to the line's signal, a SIEM, Slack, approvals.notify and the store.
    pathClass: classReading(request, pathClass(request.draft.event.path ?? request.path)),
    hourOfWeek: settings.off_hours === undefined ? undefined : hourOfWeek(now, settings.off_hours.tz),
  };
}

// The policy reads every method and path a request names (stage access: X-HTTP-Method-Override and
// its kin, `?_method=`, X-Original-URL, X-Rewrite-URL), and so must the history: else an agent that
// learned POST sends POST with `X-HTTP-Method-Override: DELETE` and the DELETE is never new. A
// request that names an override is judged, and learned, as that exact reading (`POST
// (X-HTTP-Method-Override: DELETE)`, `/ (X-Original-URL: /admin/{id})`): new until a request naming
// the same override was let through, whatever the wire method or path alone has been taught. One
// that cannot be read is its own reading (new unless taught; stage access refuses it anyway).

function methodReading(request: StagedRequest): string {
  const wire = (request.req.method ?? 'GET').toUpperCase();
  const named = overrideMethods(request.req.headers, request.query);
  if (typeof named === 'string') return `${wire} (an unreadable method override)`;
  if (named.length === 0) return wire;
  return `${wire} (${named.map((n) => `${n.by}: ${n.method}`).join(', ')})`;
}

function classReading(request: StagedRequest, wire: string): string {
  const named = overridePaths(request.req.headers);
  if (typeof named === 'string') return `${wire} (an unreadable path override)`;
  if (named.length === 0) return wire;
  // Override paths are classed like the request's own (plain words kept, the rest {id}): no value in a class.
  return `${wire} (${named.map((n) => `${n.by}: ${pathClass(n.path)}`).join(', ')})`;
}
