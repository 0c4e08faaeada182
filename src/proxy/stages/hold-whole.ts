import { ProxyError } from '../../errors/index.ts';
import { hasBody, holdBody } from '../replay-body.ts';
import type { StagedRequest } from './request.ts';

/**
 * The request's body read whole, up to `cap` (a stage that must judge or show all of it: an MCP
 * message, a request waiting for a person), kept as request.heldBody so the same bytes go upstream.
 * Past the cap: 413 body_too_large with `over` saying why it is held and what bounds it; when the
 * agent's share of held-body memory is spent: 429 rate_limited. Empty when there is no body.
 */
export async function holdWhole(request: StagedRequest, cap: number, over: { why: string; bound: string }): Promise<Buffer> {
  if (request.heldBody) return request.heldBody;
  if (!hasBody(request.req)) return Buffer.alloc(0);
  const grant = request.grant?.id;
  const held = await holdBody(request.req, cap, request.holder);
  if (held.kind === 'over') {
    throw new ProxyError('body_too_large', `${over.why}, and this body passed ${over.bound} (${cap} bytes)`, {
      grant,
      hint: `send a smaller body, or ask whoever runs keyway to raise ${over.bound}`,
    });
  }
  if (held.kind === 'full') {
    throw new ProxyError('rate_limited', "keyway's memory for held request bodies is in use (proxy.max_replay_memory_per_agent or proxy.max_replay_memory)", {
      grant,
      hint: 'retry later',
      retryAfter: 1,
    });
  }
  request.heldBody = held.body;
  return held.body;
}
