import type { HeadStage } from './request.ts';

/**
 * A request the anomaly stage held, let through by a person's yes (stage approval threw on a no,
 * an expiry or a hang-up, so this stage runs only after a yes): what it showed is learned into the
 * agent's history, and it counts toward its window. Awaited: the agent's next such request is usual.
 */
export const anomalyTaught: HeadStage = {
  name: 'anomaly-taught',
  injected: true,
  run(request) {
    const held = request.anomaly;
    if (held === undefined || !held.held) return;
    const agent = request.conn.agent.id;
    const book = request.conn.anomalies.anomaly;
    book.count(agent, held.tuning, held.at);
    return book.learn(agent, held.seen, held.signals, held.tuning, held.at).catch((err: Error) => {
      request.conn.records.logger.warn({ agent, err: { message: err.message } }, 'anomaly: the agent history could not be written');
    });
  },
};
