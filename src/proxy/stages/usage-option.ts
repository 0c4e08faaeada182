import { withIncludeUsage } from '../../spend/include-usage.ts';
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
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return undefined;
    if (body.kind === 'kept') return rewrite(request, body.body);
    if (request.holder === undefined) return undefined;
    return readForReplay(request.req, request.holder, body.stream, request.conn.decisions.config.proxy.max_body_swap).then((read) =>
      read.kind === 'kept' ? rewrite(request, read.body) : read,
    );
  },
};

function rewrite(request: StagedRequest, bytes: Buffer): RequestBody {
  const model = request.model!;
  model.requestBytes = bytes.length; // known now, even for a body the client sent in chunks
  const changed = withIncludeUsage(bytes);
  if (changed === undefined) return { kind: 'kept', body: bytes };
  request.outgoing!.headers['content-length'] = String(changed.length);
  return { kind: 'kept', body: changed };
}
