import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Grant } from '../../credentials/grant.ts';
import { type ClientResponse, isHttp2Response, writeHead } from '../client-message.ts';
import { endWithTrailers, leaveOpen } from '../http2/response.ts';
import { decodableAcceptEncoding } from '../leak-guard/encoding.ts';
import { type BodyScan, chainInto, guards, streamStages, type Redact } from '../leak-guard/response-guard.ts';
import { mayBeGzip } from '../leak-guard/sniffed-gzip.ts';
import { clientResponseHeaders } from '../headers.ts';
import { openAnswerTaps, runBodySent, runRequestSent, runResponseStages } from '../stages/index.ts';
import type { AnswerReader } from '../stages/hooks.ts';
import type { StagedRequest } from '../stages/request.ts';
import { tapStage } from './tap-stage.ts';
import type { UpstreamAnswer } from '../stages/response.ts';
import type { ReadWhole } from '../leak-guard/response-guard.ts';

export interface ForwardRequest {
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | Readable | null;
  /** Stops this forward when the client leaves. */
  departure: ClientDeparture;
  /** Hears the response's head. */
  observer?: ForwardObserver | undefined;
  /** Secrets to redact from the response (the leak guard), and who hears how many were. */
  redact?: Redact | undefined;
  /** The grant whose credential is on the request (the response stages read it). */
  grant?: Grant | undefined;
  /** Hears a hint a response stage adds (the audit line records it). */
  hints?: { onHint(message: string, hint: string): void } | undefined;
  /** The client leaving does not stop the upstream request: an answer read whole ('read') is still rewritten (a login capture saves its tokens), then dropped. */
  keepGoing?: boolean | undefined;
  /** The request as the stages left it: the request-sent hooks, the response stages and the answer taps read it (stages/index.ts). */
  staged: StagedRequest;
}

/** What the caller hears of a forward's response head (an object, so that it costs no closure per request). */
export interface ForwardObserver {
  /** Sees the status before the head goes to the client (the audit line is written at its end). */
  onHead(statusCode: number): void;
}

/**
 * One per request: set when the client has gone (its response closed before it was complete),
 * which stops the forward in flight, or one started later.
 */
export class ClientDeparture {
  #left = false;
  #inFlight: UpstreamExchange | null = null;

  /** Response body bytes relayed to the client so far (a bytes quota counts them). */
  get relayed(): number {
    return this.#inFlight?.relayed ?? 0;
  }

  get left(): boolean {
    return this.#left;
  }

  leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#inFlight?.stop();
  }

  follow(exchange: UpstreamExchange): void {
    this.#inFlight = exchange;
    if (this.#left) exchange.stop();
  }
}

/**
 * Stage "forward": streams the request body up and the response down without buffering either
 * (except a small text body the leak guard reads whole). Resolves once the response is handed to
 * the client whole; rejects with what went wrong otherwise, before or after the head went out (the
 * caller answers or cuts the response).
 *
 * A dispatch handler of our own rather than undici's stream(): that API wraps every request in an
 * AsyncResource, an abort-signal listener, three lifecycle listeners and a Writable for us to
 * return, all measurable per request on a small answer. Here the chunks go straight to the client
 * response (or to the leak guard), with backpressure by pausing the upstream.
 *
 * `dispatcher` is the upstream's, or a handler around it that may answer from a second request
 * (replay-on-refusal.ts): either way this exchange sees one answer.
 */
export function forward(dispatcher: Pick<Dispatcher, 'dispatch'>, res: ClientResponse, out: ForwardRequest): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const exchange = new UpstreamExchange(res, out, resolve, reject);
    out.departure.follow(exchange);
    if (exchange.settled) return;
    try {
      dispatcher.dispatch(
        {
          origin: out.origin,
          method: out.method as Dispatcher.HttpMethod,
          path: out.path,
          headers: guardedRequestHeaders(out.headers, out.redact),
          body: out.body,
        },
        exchange,
      );
    } catch (err) {
      exchange.fail(err as Error);
    }
  });
}

/**
 * Where the response body goes, decided at its head. waiting: no head yet (or only 1xx);
 * client: straight into the client response; whole:
 * collected, redacted whole, then sent with its true length; scan: through the leak guard's
 * scanner, called in place, into the client response; stages: an encoded body, through the leak
 * guard's stream stages (decoders, then the scanner) into the client response; read: collected
 * (bounded) and rewritten by a response stage that takes its time (a login capture), head held back.
 */
type Sink = 'waiting' | 'client' | 'whole' | 'read' | 'scan' | 'stages';

/** The client's view of one upstream request: undici's handler callbacks, as one object. */
export class UpstreamExchange implements Dispatcher.DispatchHandler, UpstreamAnswer {
  readonly #res: ClientResponse;
  readonly #out: ForwardRequest;
  readonly #resolve: () => void;
  readonly #reject: (err: Error) => void;
  #controller: Dispatcher.DispatchController | null = null;
  #sink: Sink = 'waiting';
  /** Response body bytes read from the upstream for the client. */
  relayed = 0;
  #settled = false;
  #stopped: Error | null = null;
  // 'whole': the head held back, and the chunks collected.
  // The upstream's answer as the response stages read it (UpstreamAnswer).
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #head: OutgoingHttpHeaders | null = null;
  #chunks: Buffer[] = [];
  #redactWhole: ((body: Buffer) => Buffer) | null = null;
  #read: ReadWhole | null = null;
  /** keepGoing: the client left; a 'read' body is read and rewritten all the same, and sent nowhere. */
  #clientGone = false;
  #readBytes = 0;
  #scan: BodyScan | null = null;
  /** A 'scan' body not yet begun: it goes through the stages instead if it begins as a gzip file. */
  #scanBody: Parameters<typeof streamStages>[0] | undefined;
  /** What the answer taps read of this answer (stages/hooks.ts): every byte the agent is given goes through it (#relay, #endCounted, tapStage). */
  #taps: AnswerReader | undefined;
  /**
   * A tapped answer with a length ('client' and 'scan'): the agent has it whole with its last
   * byte, before any end of stream, so its last chunk is held here until the taps counted it
   * (AnswerReader.whole). `#sized` is the upstream's length (these sinks relay its bytes as they come).
   */
  #sized = -1;
  #tail: Buffer[] | null = null;
  // 'stages': where undici's chunks go, and, for HTTP/2, the writable that leaves the response open.
  #entry: Writable | null = null;
  #opened: Writable | null = null;

  constructor(res: ClientResponse, out: ForwardRequest, resolve: () => void, reject: (err: Error) => void) {
    this.#res = res;
    this.#out = out;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  get settled(): boolean {
    return this.#settled;
  }

  get status(): number {
    return this.#status;
  }

  get method(): string {
    return this.#out.method;
  }

  get headers(): IncomingHttpHeaders {
    return this.#headers;
  }

  get redact(): Redact | undefined {
    return this.#out.redact;
  }

  get grant(): Grant | undefined {
    return this.#out.grant;
  }

  get hints(): { onHint(message: string, hint: string): void } | undefined {
    return this.#out.hints;
  }

  get request(): StagedRequest {
    return this.#out.staged;
  }

  /**
   * The client left: settle now and stop the upstream request (or, if undici has not started it
   * yet, stop it as it starts). Settling here rather than when undici reports the abort also covers
   * a response undici has finished while the leak guard's stages still had it.
   */
  stop(): void {
    // An answer that must be read to its end whatever the client does (keepGoing): only a 'read'
    // body goes on without the client; any other stops at once.
    if (this.#out.keepGoing && (this.#sink === 'waiting' || this.#sink === 'read') && !this.#settled) {
      this.#clientGone = true;
      return;
    }
    this.#stopped ??= new Error('the client left');
    this.fail(this.#stopped);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#stopped) controller.abort(this.#stopped);
  }

  /** A piece of the request body went up: the request-sent hooks hear it (stages/index.ts). */
  onBodySent(chunk: Buffer): void {
    runBodySent(this.#out.staged, chunk);
  }

  /** The request went up whole. */
  onRequestSent(): void {
    runRequestSent(this.#out.staged);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200 || this.#settled) return; // 1xx: not relayed (Node answered the client's Expect itself)
    try {
      this.#start(statusCode, headers);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return; // failed: its abort has not landed yet
    this.relayed += chunk.length;
    try {
      switch (this.#sink) {
        case 'client':
          if (!this.#relay(chunk, this.#sized >= 0 && this.relayed >= this.#sized)) this.#pauseUntilDrain(controller, this.#res);
          return;
        case 'whole':
          this.#chunks.push(chunk);
          return;
        case 'read':
          this.#readBytes += chunk.length;
          if (this.#readBytes > this.#read!.limit) return this.fail(this.#read!.tooLarge());
          this.#chunks.push(chunk);
          return;
        case 'scan': {
          // A body that begins as a gzip file goes through the stages after all (sniffed-gzip.ts):
          // decided at its first bytes, before any went out.
          const lazy = this.#scanBody;
          this.#scanBody = undefined;
          if (lazy !== undefined && mayBeGzip(chunk)) {
            this.#intoStages(lazy);
            if (!this.#entry!.write(chunk)) this.#pauseUntilDrain(controller, this.#entry!);
            return;
          }
          const last = this.#sized >= 0 && this.relayed >= this.#sized;
          let flowing = true;
          for (const piece of this.#scan!.scan(chunk)) flowing = this.#relay(piece, last);
          if (!flowing) this.#pauseUntilDrain(controller, this.#res);
          return;
        }
        case 'stages':
          if (!this.#entry!.write(chunk)) this.#pauseUntilDrain(controller, this.#entry!);
          return;
      }
    } catch (err) {
      // An HTTP/2 response whose stream has just closed throws on write (before its 'close' event).
      this.fail(err as Error);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#settled) return;
    const res = this.#res;
    try {
      switch (this.#sink) {
        case 'client':
          return this.#endCounted(undefined, () => {
            this.#writeTail();
            if (isHttp2Response(res)) endWithTrailers(res, trailers, this.#out.redact);
            else res.end();
          });
        case 'whole':
          return this.#sendWhole(trailers);
        case 'read':
          return this.#sendRead(trailers); // settles once the rewrite has answered
        case 'scan':
          return this.#endScan(trailers);
        case 'stages':
          return this.#endStages(trailers); // settles once the last stage has written its part
      }
      this.#settle();
    } catch (err) {
      this.fail(err as Error);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  /**
   * Rejects the forward (once) and stops the upstream. The client response is left to the caller,
   * which records why in the audit line before it cuts the response (or answers, if no head went).
   */
  fail(err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#entry?.destroy();
    const controller = this.#controller;
    if (controller && !controller.aborted) controller.abort(err);
    this.#reject(err);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve();
  }

  /**
   * A piece of a streamed answer ('client', 'scan') for the agent: read by the taps, then written,
   * or held back when it is the last of a sized answer (until the taps counted it: #endCounted).
   * Returns write()'s verdict (true for a piece held).
   */
  #relay(piece: Buffer, last: boolean): boolean {
    this.#taps?.push(piece);
    if (!last) return (this.#res as Writable).write(piece);
    this.#hold(piece);
    return true;
  }

  /**
   * The answer is whole here, `rest` its last bytes not yet read by the taps: counted first (a tap
   * whose count must be durable), then `end` gives the agent its end and the forward settles.
   * Untapped, or counted durably already: at once, in this tick.
   */
  #endCounted(rest: Buffer | undefined, end: () => void): void {
    const taps = this.#taps;
    if (rest !== undefined) taps?.push(rest);
    const counted = taps?.whole();
    if (counted === undefined) {
      end();
      return this.#settle();
    }
    counted.then(
      () => {
        if (this.#settled) return; // the client left meanwhile
        try {
          end();
          this.#settle();
        } catch (err) {
          this.fail(err as Error);
        }
      },
      (err: unknown) => this.fail(err as Error),
    );
  }

  #hold(piece: Buffer): void {
    if (this.#tail === null) this.#tail = [piece];
    else this.#tail.push(piece);
  }

  /** A sized answer's last chunk, held until it was counted. */
  #writeTail(): void {
    const tail = this.#tail;
    this.#tail = null;
    if (tail !== null) for (const piece of tail) (this.#res as Writable).write(piece);
  }

  /** Writes the upstream's head to the client and picks where its body goes. */
  #start(statusCode: number, headers: IncomingHttpHeaders): void {
    const res = this.#res;
    const out = this.#out;
    this.#status = statusCode;
    this.#headers = headers;
    // Before onHead: a body keyway cannot scan is refused (502) instead of relayed.
    const head = clientResponseHeaders(headers);
    const body = runResponseStages(head, this);
    out.observer?.onHead(statusCode);
    // The bytes the agent gets, decoded and redacted, for the answer taps (stages/index.ts).
    this.#taps = openAnswerTaps(out.staged, this);
    if (this.#taps !== undefined && head['content-length'] !== undefined) this.#sized = Number(headers['content-length']);
    if (body?.kind === 'whole') {
      this.#sink = 'whole';
      this.#head = head;
      this.#redactWhole = body.redact;
      return;
    }
    if (body?.kind === 'read') {
      this.#sink = 'read';
      this.#head = head;
      this.#read = body;
      return;
    }
    if (this.#clientGone) throw new Error('the client left');
    writeHead(res, statusCode, head);
    const http2 = isHttp2Response(res);
    // A stream (server-sent events, chunked) may wait before its first chunk: send the head now.
    // A sized body goes out with its head in one write, which is cheaper per request.
    // (An HTTP/2 response sends its HEADERS frame at writeHead.)
    if (head['content-length'] === undefined && !http2) res.flushHeaders();
    if (!body) {
      this.#sink = 'client';
      return;
    }
    // The common case, a body sent as it came: the scanner is called in place, with no stream
    // stages between undici and the client response.
    if (body.decoders.length === 0 && body.scan && !body.after?.length) {
      this.#scan = body.scan;
      this.#scanBody = body;
      this.#sink = 'scan';
      return;
    }
    this.#intoStages(body);
  }

  /** The body through its stream stages into the client response. */
  #intoStages(body: Parameters<typeof streamStages>[0]): void {
    const res = this.#res;
    // An HTTP/2 answer ends with the upstream's trailers, which come after the last stage's output:
    // the stages end into a writable that leaves the response open.
    if (isHttp2Response(res)) this.#opened = leaveOpen(res);
    const stages = streamStages(body);
    if (this.#taps !== undefined) stages.push(tapStage(this.#taps, this.#sized >= 0));
    const entry = chainInto(stages, this.#opened ?? (res as Writable));
    entry.once('error', (err) => this.fail(err));
    this.#entry = entry;
    this.#sink = 'stages';
  }

  /** A body read whole: tapped, counted, then sent (head and all) and settled. */
  #sendWhole(trailers: IncomingHttpHeaders): void {
    const chunks = this.#chunks;
    const output = this.#redactWhole!(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    this.#endCounted(output, () => {
      const res = this.#res;
      const head = this.#head!;
      head['content-length'] = String(output.length);
      writeHead(res, this.#status, head);
      if (isHttp2Response(res)) {
        (res as Writable).write(output);
        endWithTrailers(res, trailers, this.#out.redact);
      } else res.end(output);
    });
  }

  /** A 'read' body: rewritten (asynchronously), then sent whole with its true length; a rejection fails the answer, head unsent. */
  #sendRead(trailers: IncomingHttpHeaders): void {
    const chunks = this.#chunks;
    this.#read!.rewrite(Buffer.concat(chunks, this.#readBytes), trailers && Object.keys(trailers).length > 0 ? trailers : undefined).then(
      (output) => {
        if (this.#settled) return; // failed meanwhile
        if (this.#clientGone) return this.#settle(); // rewritten (its tokens saved) for nobody
        try {
          this.#redactWhole = (body) => body;
          this.#chunks = [output];
          this.#sendWhole(trailers);
        } catch (err) {
          this.fail(err as Error);
        }
      },
      (err: unknown) => this.fail(err as Error),
    );
  }

  #endScan(trailers: IncomingHttpHeaders): void {
    const rest = this.#scan!.end();
    this.#endCounted(rest.length ? rest : undefined, () => {
      const res = this.#res;
      this.#writeTail();
      if (isHttp2Response(res)) {
        if (rest.length) (res as Writable).write(rest);
        endWithTrailers(res, trailers, this.#out.redact);
      } else res.end(rest.length ? rest : undefined);
    });
  }

  #endStages(trailers: IncomingHttpHeaders): void {
    const entry = this.#entry!;
    entry.once('finish', () => {
      const opened = this.#opened;
      const res = this.#res;
      if (!opened || !isHttp2Response(res)) return this.#settle();
      // The last stage may still be writing into the sink when the entry is done.
      const close = () => {
        endWithTrailers(res, trailers, this.#out.redact);
        this.#settle();
      };
      if (opened.writableFinished) close();
      else opened.once('finish', close);
    });
    entry.end();
  }

  #pauseUntilDrain(controller: Dispatcher.DispatchController, writable: { once(event: 'drain', listener: () => void): unknown }): void {
    controller.pause();
    writable.once('drain', () => controller.resume());
  }
}

/**
 * Under the leak guard, the agent's Accept-Encoding is narrowed to the codings keyway can decode
 * to scan (leak-guard/encoding.ts). A copy: the caller's headers serve a replay too.
 */
export function guardedRequestHeaders(headers: Record<string, string | string[]>, redact: Redact | undefined): Record<string, string | string[]> {
  if (!guards(redact) || headers['accept-encoding'] === undefined) return headers;
  return { ...headers, 'accept-encoding': decodableAcceptEncoding(headers['accept-encoding'])! };
}
