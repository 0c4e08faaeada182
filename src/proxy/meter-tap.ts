import { Transform, type TransformCallback } from 'node:stream';
import type { AnswerMeter } from '../spend/meters/index.ts';

/** The last stream stage of a metered answer: passes every byte on, and shows it to the meter. */
export function meterTap(meter: AnswerMeter): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      meter.push(chunk);
      done(null, chunk);
    },
  });
}
