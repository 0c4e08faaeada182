import { Transform, type TransformCallback } from 'node:stream';
import { parseHeader } from '../websocket-frames/frame-reader.ts';

// keyway closing a WebSocket itself (a grant revoked, a message a socket tap refused: forwarder.ts),
// with a close frame the agent's client reads as a code and a reason rather than a dropped
// connection. The frames to the agent are the upstream's, passed as they come; a close frame may go
// only between two of them, never inside one. This passes the bytes on untouched and follows where
// each frame ends (headers only: payloads are counted, never copied).

const OPCODE_CLOSE = 0x8;
/** RFC 6455 5.5: a control frame's payload is at most 125 bytes, two of them the code. */
const MAX_REASON = 123;

export class AgentBoundFrames extends Transform {
  /** Payload bytes of the current frame still to pass. */
  #left = 0;
  /** The start of a frame header split across chunks. */
  #partial: Buffer = Buffer.alloc(0);
  /** Frames no longer followed (a header keyway cannot read): never closed cleanly. */
  #lost = false;
  #closed = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#closed) return done(); // after keyway's close frame, nothing more of the upstream's
    if (!this.#lost) this.#follow(chunk);
    done(null, chunk);
  }

  /**
   * Sends the agent a close frame (`code`, `reason`) and ends the stream, when the bytes sent so far
   * end on a frame boundary; returns false, having sent nothing more, when they do not (the caller
   * then destroys the socket).
   */
  close(code: number, reason: string): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    const clean = !this.#lost && this.#left === 0 && this.#partial.length === 0;
    if (clean) this.push(closeFrame(code, reason));
    this.push(null);
    return clean;
  }

  #follow(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, chunk.length - at);
        this.#left -= take;
        at += take;
        continue;
      }
      const start = this.#partial.length > 0 ? Buffer.concat([this.#partial, chunk.subarray(at, at + 14)]) : chunk.subarray(at);
      let header: ReturnType<typeof parseHeader>;
      try {
        header = parseHeader(start);
      } catch {
        this.#lost = true;
        return;
      }
      if (header === undefined) {
        this.#partial = Buffer.from(start.subarray(0, 14));
        return;
      }
      at += header.size - this.#partial.length;
      this.#partial = Buffer.alloc(0);
      this.#left = header.length;
    }
  }
}

/** An unmasked close frame (a server's), its reason (keyway's own, ASCII) cut to what a control frame holds. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, MAX_REASON);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x80 | OPCODE_CLOSE;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}
