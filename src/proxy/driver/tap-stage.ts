import { Transform, type TransformCallback } from 'node:stream';
import type { AnswerReader } from '../stages/hooks.ts';

/**
 * The last stream stage of a tapped answer (the answer taps' reader: stages/hooks.ts): passes
 * every byte on, and shows it to the taps. At the upstream's end it asks them whether the answer's
 * end must wait (`whole`), and ends only once that is done (its promise resolved), so the agent's
 * end of stream waits for a count. A `sized` answer (a length, no end marker) is whole at its last
 * byte: its last chunk is held back until then.
 */
export function tapStage(taps: AnswerReader, sized: boolean): Transform {
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      taps.push(chunk);
      if (!sized) return done(null, chunk);
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done: TransformCallback) {
      const counted = taps.whole();
      if (counted === undefined) return done(null, held);
      counted.then(
        () => done(null, held),
        (err: unknown) => done(err as Error),
      );
    },
  });
}
