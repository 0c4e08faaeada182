import type { TransformCallback } from 'node:stream';
import type { HeldNeedles } from '../leak-guard/held.ts';
import { MessageScan } from '../leak-guard/message-scan.ts';
import { type FrameHeader, FrameReader, isControl, WebSocketProtocolError } from '../websocket-frames/frame-reader.ts';

// The leak guard on a WebSocket, upstream to agent (RFC 6455 5.2: server frames are unmasked).
// Each needle in a message's payload becomes as many '*': lengths hold, so every frame header goes
// out as it came and nothing is re-framed. Text and binary messages alike: an echo can be either.
// A message is scanned as one stream across its frames (continuations) and across TCP chunks; a
// tail that could begin a needle waits for the next frame of the same message, never for the next
// message, so a finished message is never held. Control frames (close reasons, pongs) are scanned
// whole. keyway strips the Sec-WebSocket-Extensions offer when it injects a secret (websocket/forwarder.ts),
// so a frame with an RSV bit set, like a masked one, is a protocol error: the connection is closed.

const OPCODE_CONTINUATION = 0x0;
const MAX_CONTROL_PAYLOAD = 125;
// Frames wait in #slots only behind a fragment whose last bytes the scanner holds (at most a
// needle's length), until the next fragment arrives. An upstream that sends pings or empty
// fragments there without end would grow the queue without bound: past this, it is cut off.
const MAX_WAITING_FRAMES = 256;

/** One frame on its way out, in wire order. */
type Slot = { kind: 'data'; header: Buffer; headerSent: boolean; remaining: number } | { kind: 'control'; frame: Buffer };

export class WebSocketFrameGuard extends FrameReader {
  readonly #needles: readonly Buffer[];
  /** The real values keyway holds for the agent: looked for in every message too. */
  readonly #held: HeldNeedles | undefined;
  #scanner: MessageScan;
  /** Redactions in finished messages; the current one's are in #scanner. */
  #counted = 0;
  #control: Buffer[] = [];
  #inMessage = false;
  readonly #slots: Slot[] = [];

  constructor(needles: readonly Buffer[], held?: HeldNeedles | undefined) {
    super();
    this.#needles = needles;
    this.#held = held;
    this.#scanner = new MessageScan(needles, held, 'mask');
  }

  get redactions(): number {
    return this.#counted + this.#scanner.redactions;
  }

  override _flush(done: TransformCallback): void {
    // The upstream closed mid-frame or mid-message: what is held was never a whole needle, but the
    // frame it belongs to can no longer be completed either; the agent sees the connection end.
    done();
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    if (header.rsv !== 0) throw new WebSocketProtocolError('a frame with RSV bits set, and no extension was negotiated');
    if (header.masked) throw new WebSocketProtocolError('a masked frame from the server');
    if (isControl(header)) {
      if (!header.fin || header.length > MAX_CONTROL_PAYLOAD) throw new WebSocketProtocolError('a fragmented or oversized control frame');
      this.#control = [bytes];
    } else {
      if ((header.opcode === OPCODE_CONTINUATION) !== this.#inMessage) throw new WebSocketProtocolError('a continuation frame out of place');
      this.#inMessage = !header.fin;
      this.#slots.push({ kind: 'data', header: bytes, headerSent: false, remaining: header.length });
    }
    if (this.#slots.length > MAX_WAITING_FRAMES) throw new WebSocketProtocolError('too many frames waiting behind a fragment');
    // An empty frame goes out with what its end (frameEnd) or a later frame lets go.
    if (header.length > 0) this.#pump(undefined);
  }

  protected override framePayload(bytes: Buffer, header: FrameHeader): void {
    if (isControl(header)) this.#control.push(Buffer.from(bytes));
    else this.#pump(this.#scanner.push(bytes));
  }

  protected override frameEnd(frame: FrameHeader): void {
    if (isControl(frame)) {
      const [header, ...payload] = this.#control;
      const scanner = new MessageScan(this.#needles, this.#held, 'mask');
      const body = Buffer.concat([scanner.push(Buffer.concat(payload)), scanner.end()]);
      this.#counted += scanner.redactions;
      this.#slots.push({ kind: 'control', frame: Buffer.concat([header!, body]) });
      this.#control = [];
      this.#pump(undefined);
    } else if (frame.fin) {
      // The message is whole: what the scanner held was not a needle.
      this.#pump(this.#scanner.end());
      this.#counted += this.#scanner.redactions;
      this.#scanner = new MessageScan(this.#needles, this.#held, 'mask');
    }
  }

  /** Sends what can go: frames in wire order, each data frame's payload as the scanner lets it out. */
  #pump(payload: Buffer | undefined): void {
    let bytes = payload ?? Buffer.alloc(0);
    while (this.#slots.length > 0) {
      const slot = this.#slots[0]!;
      if (slot.kind === 'control') {
        this.send(slot.frame);
        this.#slots.shift();
        continue;
      }
      if (!slot.headerSent) {
        this.send(slot.header);
        slot.headerSent = true;
      }
      const take = Math.min(slot.remaining, bytes.length);
      if (take > 0) {
        this.send(bytes.subarray(0, take));
        bytes = bytes.subarray(take);
        slot.remaining -= take;
      }
      if (slot.remaining > 0) break;
      this.#slots.shift();
    }
    if (bytes.length > 0) throw new Error('websocket guard: payload bytes with no frame to carry them');
  }
}
