import type { Duplex } from 'node:stream';
import type { HeldBodyMemory } from '../websocket-frames/agent-frames.ts';
import type { AuditEvent } from '../../audit/index.ts';
import type { Connection } from '../connection.ts';
import type { Decisions } from '../contract.ts';
import type { UpstreamAnswer } from './response.ts';
import type { StagedRequest } from './request.ts';

// The phases of the request path after the head and body stages (stages/index.ts lists each):
// the request sent, the answer's bytes on their way to the agent, and the exchange's close; and
// for a WebSocket, its messages both ways and its close. The driver (forward.ts, exchange.ts,
// websocket/forwarder.ts) runs them at their moment and knows none of the features that fill them.

/**
 * Hears the request go upstream (undici's dispatch handler, forward.ts). `bodySent` runs for every
 * piece of every request body sent: it returns at once on a request that is not its own.
 */
export interface RequestSentHook {
  readonly name: string;
  /** A piece of the request body went up. */
  bodySent(request: StagedRequest, chunk: Buffer): void;
  /** The request went up whole: the upstream has it (a replay sends it again). */
  sent(request: StagedRequest): void;
}

/**
 * What reads one answer's bytes as the agent gets them: decoded and redacted, whichever way
 * forward.ts writes them (as they come, through the leak guard's scanner or stream stages, or
 * whole after a rewrite).
 */
export interface AnswerReader {
  push(chunk: Buffer): void;
  /**
   * The answer is whole (its last byte read from the upstream and pushed here) and its end not yet
   * given to the agent. The end goes to the agent once the promise resolves (at once when
   * undefined); a rejection cuts the answer instead: a count that must be durable before the agent
   * holds a whole answer (spend/ledger/journal.ts) returns its write here.
   */
  whole(): Promise<void> | undefined;
}

/**
 * An answer tap: at the answer's head (after the response stages planned its body), opens a reader
 * of this answer's bytes, or returns undefined when the answer is not its own. An answer no tap
 * reads costs nothing per chunk.
 */
export interface AnswerTap {
  readonly name: string;
  open(request: StagedRequest, answer: UpstreamAnswer): AnswerReader | undefined;
}

/** How the exchange's answer ended, read when its response closes. */
export interface ClosedAnswer {
  /** The agent got the whole answer (else it left, or the answer was cut). */
  readonly answerCompleted: boolean;
  /** Response body bytes relayed to the agent (read from the upstream for it). */
  readonly relayed: number;
}

/**
 * A close stage: runs once, when the exchange's response closes (or its socket dies), in the
 * order of CLOSE_STAGES: what the request counts against, then its audit line.
 */
export interface CloseStage {
  readonly name: string;
  run(request: StagedRequest, closed: ClosedAnswer): void;
}

/**
 * A socket tap: reads the messages of a WebSocket that is its own (websocket/forwarder.ts opens it).
 * `open` runs at the handshake, once the head stages passed and before it goes upstream: undefined
 * when the socket is not its own (nothing is allocated then); it may refuse the handshake by
 * throwing a ProxyError, as a head stage does.
 */
export interface SocketTap {
  readonly name: string;
  open(request: StagedRequest): SocketTapping | undefined;
}

/** A socket tap on one WebSocket, between its handshake and its 101. */
export interface SocketTapping {
  /**
   * It reads the frames' payloads: none may be compressed, so the upstream is offered no
   * extension, and one it accepts anyway ends the handshake.
   */
  readonly reads: boolean;
  /**
   * The 101 went out: the frame readers it puts on the socket (websocket-frames/), or none. It does
   * not throw (the agent has its answer): a reader refuses a message by closing the socket.
   */
  start(socket: OpenSocket): SocketReaders | undefined;
}

/** What a socket tap is given of the WebSocket once its 101 went out. */
export interface OpenSocket {
  /** The agent's side is gone. */
  readonly gone: boolean;
  /** Sends the agent a close frame (websocket-frames/close-codes.ts; a short reason, never a value) and ends both sides. */
  closeWith(code: number, reason: string): void;
  /** Ends both sides at once, no close frame: frames that cannot be read. */
  destroy(): void;
  /** The agent's memory for held bodies (agent-load.ts): what a reader that holds a message whole reserves. */
  readonly memory: HeldBodyMemory;
}

/**
 * A socket tap's frame readers, each a stream of frames in and frames out. In each direction the
 * frames pass the taps' readers in the order of SOCKET_TAPS.
 */
export interface SocketReaders {
  /** The agent's frames as it sent them, before keyway's body swap (compressed if the agent and keyway agreed so). */
  readonly fromAgent?: Duplex | undefined;
  /** The agent's frames as they go upstream, after the swap: never compressed. */
  readonly toUpstream?: Duplex | undefined;
  /** The upstream's frames as the agent gets them, after the leak guard. */
  readonly toAgent?: Duplex | undefined;
  /**
   * The socket closed: runs before its audit line is written (a last count, fields on the line). It
   * does not throw: one that did would leave the line unwritten, as a close stage would.
   */
  closed?(): void;
}

/**
 * More than one tap reads the answer: each is given every chunk, in the list's order, and the end
 * waits for every count. Made only when two taps open on one answer.
 */
export class AnswerReaders implements AnswerReader {
  readonly #readers: readonly AnswerReader[];

  constructor(readers: readonly AnswerReader[]) {
    this.#readers = readers;
  }

  push(chunk: Buffer): void {
    const readers = this.#readers;
    for (let i = 0; i < readers.length; i++) readers[i]!.push(chunk);
  }

  whole(): Promise<void> | undefined {
    const readers = this.#readers;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < readers.length; i++) {
      const wait = readers[i]!.whole();
      if (wait === undefined) continue;
      if (waits === undefined) waits = [wait];
      else waits.push(wait);
    }
    if (waits === undefined) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }
}

/**
 * Runs once the exchange's run is over, whatever happened (answered, refused, failed, cut short),
 * possibly before its response closes: gives back what a stage held for the run (a login capture's
 * refresh lock, if its answer never came to be captured). It does not throw.
 */
export interface RunEndedHook {
  readonly name: string;
  run(request: StagedRequest): void;
}

/**
 * An answer keyway gives itself in place of the upstream's: a head or body stage throws it, and the
 * exchange writes it (not to be stored: `cache-control: no-store`) with nothing sent upstream. A
 * login capture's refresh with a token another request exchanged already gets that exchange's
 * answer again this way (stage capture-body).
 */
export class LocalAnswer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: string;
  /** What the audit line says of the answer, beside its status (`captured_again`). */
  readonly audit: Partial<AuditEvent>;

  constructor(status: number, contentType: string | undefined, body: string, audit: Partial<AuditEvent>) {
    this.status = status;
    this.contentType = contentType;
    this.body = body;
    this.audit = audit;
  }
}

/**
 * A tunnel guard: asked at CONNECT, for a connection to a host no grant covers, whether keyway
 * reads it (TLS terminated, nothing injected, every request forwarded as it came) rather than
 * tunnel it unread. `capture-guard` reads those of an agent a login capture gave placeholders to.
 */
export interface TunnelGuard {
  readonly name: string;
  reads(runtime: Pick<Decisions, 'tables'>, conn: Connection): boolean;
}
