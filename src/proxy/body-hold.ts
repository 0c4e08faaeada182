import { ProxyError } from '../errors/index.ts';
import type { ClientRequest } from './client-message.ts';
import { hasBody, type ReplayHolder } from './replay-body.ts';
import type { StagedRequest } from './stages/request.ts';

/**
 * What a caller of holdWhole refuses with, in its own words: a rule's max_body names the rule, an
 * MCP message or an approval its setting, a signature max_signed_body.
 */
export interface HoldRefusal {
  /** The body passed the cap: `seen` bytes read, or declared. */
  over(seen: number): ProxyError;
  /** The agent's (or keyway's) memory for held bodies is spent before the body ended. */
  full(): ProxyError;
}

const EMPTY = Buffer.alloc(0);

/**
 * The one body hold: the request's body read whole, up to `cap`, for every stage that must see all
 * of it (a rule's max_body on a body of undeclared size, an MCP message judged, a request waiting for
 * a person, a signature over the body). The bytes are kept as request.heldBody, so the same bytes go
 * upstream (body stage held-body) and a later stage asking gets them without reading again. A
 * declared size over the cap is refused before a byte is read; the bytes held come out of the
 * agent's memory for held bodies (request.holder). Empty when there is no body.
 */
export async function holdWhole(request: StagedRequest, cap: number, refuse: HoldRefusal): Promise<Buffer> {
  if (request.heldBody) return request.heldBody;
  const { req } = request;
  if (!hasBody(req)) return EMPTY;
  const declared = Number(req.headers['content-length']);
  if (declared > cap) throw refuse.over(declared);
  const held = await holdBody(req, cap, request.holder);
  if (held.kind === 'over') throw refuse.over(held.seen);
  if (held.kind === 'full') throw refuse.full();
  request.heldBody = held.body;
  return held.body;
}

/**
 * The refusal of a stage that holds a body to read or show it (an MCP message, a request waiting
 * for a person): 413 past the setting that bounds it, 429 while memory for held bodies is in use.
 */
export function boundRefusal(request: StagedRequest, cap: number, over: { why: string; bound: string }): HoldRefusal {
  const grant = request.grant?.id;
  return {
    over: () =>
      new ProxyError('body_too_large', `${over.why}, and this body passed ${over.bound} (${cap} bytes)`, {
        grant,
        hint: `send a smaller body, or ask whoever runs keyway to raise ${over.bound}`,
      }),
    full: () =>
      new ProxyError('rate_limited', "keyway's memory for held request bodies is in use (proxy.max_replay_memory_per_agent or proxy.max_replay_memory)", {
        grant,
        hint: 'retry later',
        retryAfter: 1,
      }),
  };
}

/**
 * The largest body keyway holds in memory to check a rule's max_body when the size is not declared
 * (chunked). A cap above it would let each request pin that much memory, so such bodies must
 * declare Content-Length instead (checked before anything is read, then streamed).
 */
export const HOLD_LIMIT = 8 * 1024 * 1024;

/** 'full': the holder's budget ran out first (nothing more is read; the caller refuses). */
type HeldBody = { kind: 'held'; body: Buffer } | { kind: 'over'; seen: number } | { kind: 'full' };

/**
 * Reads a whole request body, keeping at most `cap` bytes. Past the cap it stops keeping, lets the
 * rest drain unread (so the connection can still carry keyway's answer), and reports the bytes seen.
 * Rejects if the client goes away before the body ends.
 */
function holdBody(req: ClientRequest, cap: number, holder?: ReplayHolder): Promise<HeldBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= cap) {
        // Each chunk kept is reserved from the holder's budget; what was reserved is given back
        // with the exchange's, whatever the outcome.
        if (holder && !holder.hold(chunk.length)) {
          stop();
          chunks.length = 0;
          req.resume();
          return void resolve({ kind: 'full' });
        }
        return void chunks.push(chunk);
      }
      stop();
      chunks.length = 0;
      req.resume(); // flowing with no listener: the rest is discarded
      resolve({ kind: 'over', seen: size });
    };
    const onEnd = () => {
      stop();
      resolve({ kind: 'held', body: Buffer.concat(chunks, size) });
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    const onClose = () => {
      if (req.complete) return;
      stop();
      reject(new Error('the client closed before the request body ended'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
