import { ProxyError } from '../../errors/index.ts';
import { usageReported, withIncludeUsage } from '../../spend/include-usage.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { RequestBodyStage } from './body.ts';
import type { StagedRequest } from './request.ts';

/**
 * A streamed OpenAI Chat Completions (or legacy Completions) request reports its usage only when it
 * asks for it (`stream_options.include_usage`): keyway asks for it on the agent's behalf, so that
 * the answer can be metered (the agent's stream gains one last chunk, with empty `choices` and the
 * usage, which OpenAI's clients expect). The body is held whole for it, up to proxy.max_body_swap
 * and within the agent's memory for held bodies; past either, or compressed, it goes as it came
 * and its answer's usage is unknown (flagged in the audit line).
 */
export const usageOption: RequestBodyStage = {
  name: 'usage-option',
  run(request, body) {
    const route = request.model?.plan.route;
    if ((route !== 'openai-chat' && route !== 'openai-completions') || body.kind === 'none') return undefined;
    const encoding = request.req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return unread(request, 'a compressed body', undefined);
    if (body.kind === 'kept') return rewrite(request, body.body);
    if (request.holder === undefined) return unread(request, 'a body keyway cannot hold', undefined);
    const limit = request.conn.decisions.config.proxy.max_body_swap;
    return readForReplay(request.req, request.holder, body.stream, limit).then((read) =>
      read.kind === 'kept'
        ? rewrite(request, read.body)
        : unread(request, `a body over ${limit} bytes (proxy.max_body_swap) or past the memory for held bodies`, read),
    );
  },
};

function rewrite(request: StagedRequest, bytes: Buffer): RequestBody {
  const model = request.model!;
  model.requestBytes = bytes.length; // known now, even for a body the client sent in chunks
  const changed = withIncludeUsage(bytes);
  const sent = changed ?? bytes;
  if (!usageReported(sent)) return unread(request, 'a body whose `stream` keyway cannot read', { kind: 'kept', body: sent });
  if (changed === undefined) return { kind: 'kept', body: bytes };
  request.outgoing!.headers['content-length'] = String(changed.length);
  return { kind: 'kept', body: changed };
}

/**
 * A body keyway could not make ask for its usage: sent as it came (its answer's usage may then be
 * unknown, flagged), except under a budget, where an answer keyway may not meter is refused like a
 * route it cannot meter (an agent could otherwise stream past its budget uncounted).
 */
function unread<B extends RequestBody | undefined>(request: StagedRequest, what: string, body: B): B {
  const { grant } = request;
  if (!request.conn.spending.spend.budgeted(request.model!.scope)) return body;
  throw new ProxyError(
    'policy_denied',
    `keyway cannot meter this ${request.model!.plan.route === 'openai-chat' ? 'Chat Completions' : 'Completions'} request (${what}), and a model budget applies`,
    {
      grant: grant?.id,
      hint: 'send an uncompressed JSON body with `stream` true or false; a larger body needs a larger proxy.max_body_swap',
    },
  );
}
