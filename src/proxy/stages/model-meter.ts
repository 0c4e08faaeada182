import { type AnswerMeter, answerMeter } from '../../spend/core/meters/index.ts';
import type { Connection } from '../connection.ts';
import { countAnswerEnd, type ModelExchange } from './model-exchange.ts';
import type { AnswerReader, AnswerTap } from './hooks.ts';

/**
 * Model traffic (stage budget marks it): the bytes the agent gets, decoded and redacted, go
 * through the answer's meter for the model's usage (spend/core/meters/). An answer keyway could not
 * decode (no leak guard, an encoded body) is read as it is, and its usage is then unknown
 * (flagged). Only a billed answer (2xx) has a meter; any answer's head marks the exchange answered.
 */
export const modelMeter: AnswerTap = {
  name: 'model-meter',
  open(request, answer) {
    const model = request.model;
    if (model === undefined) return undefined;
    const meter = answerMeter(model.plan, answer.status, answer.headers['content-type'] as string | undefined, {
      requestBytes: model.requestBytes,
      facts: model.facts,
    });
    model.meter = meter;
    model.answered = true;
    return meter === undefined ? undefined : new MeteredAnswer(meter, model, request.conn);
  },
};

/** One metered answer: its bytes into the meter; once whole, counted before its end goes to the agent (countAnswerEnd). */
class MeteredAnswer implements AnswerReader {
  readonly #meter: AnswerMeter;
  readonly #model: ModelExchange;
  readonly #conn: Pick<Connection, 'spending' | 'decisions'>;

  constructor(meter: AnswerMeter, model: ModelExchange, conn: Pick<Connection, 'spending' | 'decisions'>) {
    this.#meter = meter;
    this.#model = model;
    this.#conn = conn;
  }

  push(chunk: Buffer): void {
    this.#meter.push(chunk);
  }

  whole(): Promise<void> | undefined {
    const conn = this.#conn;
    return countAnswerEnd(this.#model, conn.spending.spend, conn.decisions.now());
  }
}
