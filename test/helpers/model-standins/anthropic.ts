// Anthropic's Messages API, as a stand-in: POST /v1/messages answered whole or as the SSE stream
// (message_start with the input usage, content_block_start/delta/stop, message_delta with the
// output usage, message_stop), and /v1/messages/count_tokens. It takes an API key in `x-api-key`, or a
// subscription's OAuth access token as `Authorization: Bearer` with the `anthropic-beta: oauth-…`
// flag the API asks of one, and refuses anything else 401 with the API's error shape.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type Accepts, acceptsAccessToken, acceptsKey, pieces, type ReplySource, replyFor, type Usage } from './replies.ts';
import { bearerOf, headerOf, type StandinHandler, type StandinRequest, sendJson, sseEvent, startSse } from './server.ts';

export const ANTHROPIC_HOST = 'api.anthropic.com';

export interface AnthropicOptions extends Accepts {
  reply?: ReplySource;
  /** The host it answers for (others fall through): api.anthropic.com. */
  host?: string;
  /** A tool the model calls instead of answering text, per request: undefined for the text reply. */
  toolUse?: (req: StandinRequest) => { name: string; input: Record<string, unknown> } | undefined;
}

/** How a request authenticated, for a test to assert on. */
export type AnthropicAuth = { kind: 'api_key'; value: string } | { kind: 'oauth'; value: string };

/**
 * The credential a request presents: `x-api-key` (Claude Code, older SDKs), else `Authorization:
 * Bearer`, which carries an API key from @anthropic-ai/sdk 1.x (API version 2026-10-21) and a
 * subscription's access token from Claude Code; told apart by what the stand-in issued.
 */
export function anthropicAuth(req: StandinRequest, accepts: Accepts): AnthropicAuth | undefined {
  const key = headerOf(req, 'x-api-key');
  if (key !== undefined) return { kind: 'api_key', value: key };
  const token = bearerOf(req);
  if (token === undefined) return undefined;
  return acceptsKey(accepts, token) ? { kind: 'api_key', value: token } : { kind: 'oauth', value: token };
}

function error(res: ServerResponse, status: number, type: string, message: string): true {
  return sendJson(res, status, { type: 'error', error: { type, message }, request_id: `req_standin${randomBytes(6).toString('hex')}` });
}

function usageOf(usage: Usage): Record<string, number> {
  return {
    input_tokens: usage.input,
    cache_creation_input_tokens: usage.cacheWrite ?? 0,
    cache_read_input_tokens: usage.cacheRead ?? 0,
    output_tokens: usage.output,
  };
}

/**
 * The account a subscription login's token belongs to, as GET /api/oauth/profile answers: Claude Code
 * reads it right after each refresh and keeps the refreshed tokens only when it succeeds.
 */
export const STANDIN_PROFILE = {
  account: { uuid: '5f1e0c8a-0000-4000-8000-standin00001', email: 'agent@example.test', display_name: 'Stand-in', full_name: 'Stand-in Account' },
  organization: {
    uuid: '5f1e0c8a-0000-4000-8000-standin00002',
    name: 'Stand-in Org',
    organization_type: 'claude_max',
    rate_limit_tier: 'default_claude_max_20x',
    billing_type: 'stripe_subscription',
    has_extra_usage_enabled: false,
  },
};

export function anthropicHandler(options: AnthropicOptions): StandinHandler {
  const host = options.host ?? ANTHROPIC_HOST;
  return (req, res) => {
    if (req.host !== host) return false;
    if (req.method === 'GET' && req.path === '/api/oauth/profile') {
      if (!acceptsAccessToken(options, bearerOf(req))) return error(res, 401, 'authentication_error', 'Invalid bearer token');
      return sendJson(res, 200, STANDIN_PROFILE);
    }
    if (!req.path.startsWith('/v1/')) return false;
    const auth = anthropicAuth(req, options);
    if (auth === undefined) return error(res, 401, 'authentication_error', 'x-api-key header is required');
    if (auth.kind === 'api_key' && !acceptsKey(options, auth.value)) return error(res, 401, 'authentication_error', 'invalid x-api-key');
    if (auth.kind === 'oauth' && !acceptsAccessToken(options, auth.value)) return error(res, 401, 'authentication_error', 'Invalid bearer token');
    const inference = req.path === '/v1/messages' || req.path === '/v1/messages/count_tokens';
    // The Messages API takes a subscription's token only with the OAuth beta flag (other calls
    // Claude Code makes with it, /v1/mcp_servers, carry their own flags instead).
    if (auth.kind === 'oauth' && inference && !/\boauth-\d{4}-\d{2}-\d{2}\b/.test(headerOf(req, 'anthropic-beta') ?? ''))
      return error(res, 401, 'authentication_error', 'OAuth authentication is currently not supported.');
    const body = (req.json ?? {}) as { model?: string; stream?: boolean; messages?: unknown[] };
    if (req.method === 'POST' && req.path === '/v1/messages/count_tokens') return sendJson(res, 200, { input_tokens: 42 });
    // The claude.ai connectors a subscription has (none here), listed at start by Claude Code.
    if (req.method === 'GET' && req.path === '/v1/mcp_servers') return sendJson(res, 200, { data: [], has_more: false, next_page: null });
    if (req.method !== 'POST' || req.path !== '/v1/messages') return error(res, 404, 'not_found_error', `Not found: ${req.method} ${req.path}`);
    if (typeof body.model !== 'string' || !Array.isArray(body.messages)) return error(res, 400, 'invalid_request_error', 'model and messages are required');
    const reply = replyFor(options.reply, req, 'Hello from the Anthropic stand-in.');
    const model = reply.model ?? body.model;
    const id = `msg_standin${randomBytes(8).toString('hex')}`;
    const tool = options.toolUse?.(req);
    if (tool !== undefined) return toolUseAnswer(res, { id, model, usage: reply.usage, stream: body.stream === true, ...tool });
    if (body.stream !== true) {
      return sendJson(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text: reply.text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: usageOf(reply.usage),
      });
    }
    startSse(res);
    // The input side of usage comes in message_start (output_tokens there is a placeholder 1), the
    // final output count in message_delta, as the API streams them.
    const start = usageOf({ ...reply.usage, output: 1 });
    res.write(
      sseEvent(
        {
          type: 'message_start',
          message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: start },
        },
        'message_start',
      ),
    );
    res.write(sseEvent({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'));
    res.write(sseEvent({ type: 'ping' }, 'ping'));
    for (const text of pieces(reply.text))
      res.write(sseEvent({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta'));
    res.write(sseEvent({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
    res.write(
      sseEvent(
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: {
            output_tokens: reply.usage.output,
            input_tokens: reply.usage.input,
            cache_read_input_tokens: reply.usage.cacheRead ?? 0,
            cache_creation_input_tokens: reply.usage.cacheWrite ?? 0,
          },
        },
        'message_delta',
      ),
    );
    res.end(sseEvent({ type: 'message_stop' }, 'message_stop'));
    return true;
  };
}

/** A tool_use answer (stop_reason tool_use), whole or streamed as its input's JSON in one delta. */
function toolUseAnswer(
  res: ServerResponse,
  a: { id: string; model: string; usage: Usage; stream: boolean; name: string; input: Record<string, unknown> },
): true {
  const block = { type: 'tool_use', id: `toolu_standin${randomBytes(8).toString('hex')}`, name: a.name, input: a.input };
  const message = { id: a.id, type: 'message', role: 'assistant', model: a.model, stop_sequence: null };
  if (!a.stream) return sendJson(res, 200, { ...message, content: [block], stop_reason: 'tool_use', usage: usageOf(a.usage) });
  startSse(res);
  res.write(
    sseEvent({ type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: usageOf({ ...a.usage, output: 1 }) } }, 'message_start'),
  );
  res.write(sseEvent({ type: 'content_block_start', index: 0, content_block: { ...block, input: {} } }, 'content_block_start'));
  res.write(
    sseEvent({ type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(a.input) } }, 'content_block_delta'),
  );
  res.write(sseEvent({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
  res.write(
    sseEvent({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: a.usage.output } }, 'message_delta'),
  );
  res.end(sseEvent({ type: 'message_stop' }, 'message_stop'));
  return true;
}
