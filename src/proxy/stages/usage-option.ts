import { Readable } from 'node:stream';
import { usageReported, withIncludeUsage } from '../../spend/request/include-usage.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { RequestBodyStage } from './body.ts';
import type { ModelExchange } from './model-exchange.ts';
import type { StagedRequest } from './request.ts';
import { unmeterable } from '../unmeterable.ts';

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
    if (route === 'openai-responses' && body.kind !== 'none') return foreground(request, body);
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
  throw unmeterable(
    `this ${request.model!.plan.route === 'openai-chat' ? 'Chat Completions' : 'Completions'} request (${what})`,
    grant?.id,
    'send an uncompressed JSON body with `stream` true or false; a larger body needs a larger proxy.max_body_swap',
  );
}

/**
 * A Responses request with `background: true` is answered later: its POST gets a queued response
 * with no usage, and the output is read afterwards with GETs (the response, its stream, the
 * conversation's items), which cost nothing to meter. Under a budget, keyway admits a Responses
 * body only when it reads it whole and `background` is absent, false or null, named at most once;
 * anything else (true, "true", 1, a body it cannot read) is refused. Without a budget it goes as it came.
 */
function foreground(request: StagedRequest, body: RequestBody): RequestBody | Promise<RequestBody> | undefined {
  if (!request.conn.spending.spend.budgeted(request.model!.scope)) return undefined;
  const encoding = request.req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') throw notForeground(request, 'a compressed body');
  if (body.kind === 'kept') return judgeBackground(request, body.body);
  if (body.kind !== 'streamed' || request.holder === undefined) throw notForeground(request, 'a body keyway cannot hold');
  const limit = request.conn.decisions.config.proxy.max_body_swap;
  return readForReplay(request.req, request.holder, body.stream, limit).then((read) => {
    if (read.kind !== 'kept') throw notForeground(request, `a body over ${limit} bytes (proxy.max_body_swap) or past the memory for held bodies`);
    return judgeBackground(request, read.body);
  });
}

function judgeBackground(request: StagedRequest, bytes: Buffer): RequestBody {
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw notForeground(request, 'a body that is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw notForeground(request, 'a body that is not a JSON object');
  const named = text.match(/"background"\s*:/g)?.length ?? 0;
  const value = (parsed as Record<string, unknown>)['background'];
  if (named > 1 || (value !== undefined && value !== false && value !== null))
    throw notForeground(request, '`background` set: its answer comes later, where keyway cannot meter it');
  request.model!.requestBytes = bytes.length;
  return { kind: 'kept', body: bytes };
}

function notForeground(request: StagedRequest, what: string): Error {
  return unmeterable(
    `this Responses request (${what})`,
    request.grant?.id,
    'send an uncompressed JSON body without `background`; a larger body needs a larger proxy.max_body_swap',
  );
}

/**
 * A metered request's body size when the agent declared none (chunked, or HTTP/2 without
 * content-length): counted as it goes up. An answer cut short before it names its input has its
 * input estimated from the request's bytes (spend/core/meters/tally.ts); without a size, an agent could
 * send a long prompt chunked, read an OpenAI or Gemini answer to its last delta and hang up before
 * the usage came, and its input would count as nothing. Last of the body stages: the bytes sent.
 */
export const modelBodySize: RequestBodyStage = {
  name: 'model-body-size',
  run(request, body) {
    const model = request.model;
    if (model === undefined || model.requestBytes !== undefined || body.kind === 'none') return undefined;
    if (body.kind === 'kept') {
      model.requestBytes = body.body.length;
      return undefined;
    }
    model.requestBytes = 0;
    return { ...body, stream: Readable.from(sized(model, body.stream), { objectMode: false }) };
  },
};

async function* sized(model: ModelExchange, source: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    model.requestBytes = (model.requestBytes ?? 0) + (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}
