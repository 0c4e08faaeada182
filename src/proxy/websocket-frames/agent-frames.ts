import { randomFillSync } from 'node:crypto';
import { FrameReader } from './frame-reader.ts';

// The agent's frames (RFC 6455 5.2: a client's are masked), for the readers that hold an agent's
// message whole before it goes upstream: the body swap (websocket/client-swap.ts) and the
// placeholder check (stages/socket-readers/client-placeholders.ts). Both hold within the agent's
// memory for held bodies (agent-load.ts), send a message they leave alone frame for frame as it
// came, and read its payload unmasked.

/** Empty fragments cost no bytes; their number is bounded on its own. */
export const MAX_HELD_FRAMES = 1024;

/** The agent's memory for held bodies (agent-load.ts). */
export interface HeldBodyMemory {
  hold(bytes: number): boolean;
  release(bytes: number): void;
}

/** A frame of a held message: its header as it came (the mask key last) and its payload, still masked. */
export interface HeldFrame {
  header: Buffer;
  mask: Buffer;
  payload: Buffer[];
}

export function heldFrame(header: Buffer): HeldFrame {
  return { header, mask: header.subarray(header.length - 4), payload: [] };
}

/** A FrameReader that holds agent frames' bytes against the agent's memory, given back whatever ends it. */
export abstract class AgentFrameReader extends FrameReader {
  readonly #memory: HeldBodyMemory;
  #reserved = 0;

  constructor(memory: HeldBodyMemory) {
    super();
    this.#memory = memory;
  }

  /** Whether the agent's memory has room for `bytes` more: if so, they count as held until releaseAll. */
  protected reserve(bytes: number): boolean {
    if (!this.#memory.hold(bytes)) return false;
    this.#reserved += bytes;
    return true;
  }

  protected releaseAll(): void {
    if (this.#reserved === 0) return;
    this.#memory.release(this.#reserved);
    this.#reserved = 0;
  }

  /** Sends held frames exactly as they came: headers, mask keys and masked payloads untouched. */
  protected sendAsTheyCame(frames: readonly HeldFrame[]): void {
    for (const frame of frames) {
      this.send(frame.header);
      for (const bytes of frame.payload) this.send(bytes);
    }
  }

  protected override failed(): void {
    this.releaseAll();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.releaseAll();
    done(err);
  }
}

/** A held message's payload, its frames' payloads joined and unmasked. */
export function unmaskedPayload(frames: readonly HeldFrame[]): Buffer {
  return Buffer.concat(frames.map(unmask));
}

function unmask(frame: HeldFrame): Buffer {
  const payload = Buffer.concat(frame.payload);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= frame.mask[i & 3]!;
  return payload;
}

/** One whole client frame (FIN, no RSV bits), masked with a fresh key as RFC 6455 5.3 asks. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(size + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomFillSync(Buffer.allocUnsafe(4));
  mask.copy(frame, size);
  for (let i = 0; i < length; i++) frame[size + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}
