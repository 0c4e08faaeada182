import { Transform, type TransformCallback } from 'node:stream';
import type { AnswerMeter } from '../spend/meters/index.ts';

/**
 * The last stream stage of a metered answer: passes every byte on, and shows it to the meter. At
 * the upstream's end it asks `whole` to count the answer, and ends only once that is done (its
 * promise resolved), so the agent's end of stream waits for the count. A `sized` answer (a length,
 * no end marker) is whole at its last byte: its last chunk is held back until then.
 */
export function meterTap(meter: AnswerMeter, sized: boolean, whole: () => Promise<void> | undefined): Transform {
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      meter.push(chunk);
      if (!sized) return done(null, chunk);
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done: TransformCallback) {
      const counted = whole();
      if (counted === undefined) return done(null, held);
      counted.then(
        () => done(null, held),
        (err: unknown) => done(err as Error),
      );
    },
  });
}
