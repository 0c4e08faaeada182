// OpenAI's APIs, as a stand-in: the Responses API (POST …/responses, whole or as SSE ending in
// `response.completed` with usage) that Codex speaks, and Chat Completions (whole, or streamed with
// `stream_options.include_usage`'s last chunk) that most other clients speak, with the legacy
// Completions and Embeddings (their usage: prompt_tokens, and completion_tokens for Completions). Mounted at /v1 on
// api.openai.com for an API key, or at /backend-api/codex on chatgpt.com for a ChatGPT login. Takes
// `Authorization: Bearer` with an accepted key or access token; anything else is 401 in the API's shape.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type Accepts, acceptsAccessToken, acceptsKey, type ModelReply, pieces, type ReplySource, replyFor } from './replies.ts';
import { bearerOf, type StandinHandler, type StandinRequest, type StandinWsHandler, sendJson, sseEvent, startSse } from './server.ts';

export const OPENAI_HOST = 'api.openai.com';
export const CHATGPT_HOST = 'chatgpt.com';

export interface OpenAiOptions extends Accepts {
  reply?: ReplySource;
  /** api.openai.com unless given (chatgpt.com for the ChatGPT login's Codex backend). */
  host?: string;
  /** Where the routes hang: /v1 (the API) or /backend-api/codex (ChatGPT's Codex backend). */
  basePath?: string;
  /**
   * Output items to answer with instead of a text message (a tool call, say), per request: undefined
   * for the text reply. Each is sent whole (output_item.added, then .done).
   */
  items?: (req: StandinRequest) => Array<Record<string, unknown>> | undefined;
}

function error(res: ServerResponse, status: number, message: string, code: string | null, type = 'invalid_request_error'): true {
  return sendJson(res, status, { error: { message, type, param: null, code } });
}

function responsesUsage(usage: ModelReply['usage']) {
  return {
    input_tokens: usage.input,
    input_tokens_details: { cached_tokens: usage.cacheRead ?? 0 },
    output_tokens: usage.output,
    output_tokens_details: { reasoning_tokens: usage.reasoning ?? 0 },
    total_tokens: usage.input + usage.output,
  };
}

function chatUsage(usage: ModelReply['usage']) {
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cacheRead ?? 0 },
    completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0 },
  };
}

export function openaiHandler(options: OpenAiOptions): StandinHandler {
  const host = options.host ?? OPENAI_HOST;
  const base = options.basePath ?? '/v1';
  return (req, res) => {
    if (req.host !== host || !req.path.startsWith(`${base}/`)) return false;
    const token = bearerOf(req);
    if (token === undefined)
      return error(res, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.", null);
    if (!acceptsKey(options, token) && !acceptsAccessToken(options, token))
      return error(res, 401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_api_key');
    const route = req.path.slice(base.length);
    if (req.method === 'GET' && route === '/models')
      return sendJson(res, 200, { object: 'list', data: [{ id: 'gpt-standin', object: 'model', created: 0, owned_by: 'standin' }] });
    if (req.method === 'POST' && route === '/responses') return responses(req, res, options);
    if (req.method === 'POST' && route === '/chat/completions') return chat(req, res, options);
    if (req.method === 'POST' && route === '/completions') return completions(req, res, options);
    if (req.method === 'POST' && route === '/embeddings') return embeddings(req, res, options);
    return error(res, 404, `Invalid URL (${req.method} ${req.path})`, null);
  };
}

/** The Responses API's stream for one reply, as the events the SSE and WebSocket transports both carry. */
function responseEvents(req: StandinRequest, options: OpenAiOptions, model: string): { done: Record<string, unknown>; events: Array<Record<string, unknown>> } {
  const reply = replyFor(options.reply, req, 'Hello from the OpenAI stand-in.');
  const id = `resp_standin${randomBytes(8).toString('hex')}`;
  const itemId = `msg_standin${randomBytes(8).toString('hex')}`;
  const message = {
    id: itemId,
    type: 'message',
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text: reply.text, annotations: [] }],
  };
  const done = {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'completed',
    model: reply.model ?? model,
    output: [message],
    usage: responsesUsage(reply.usage),
  };
  const events: Array<Record<string, unknown>> = [];
  const push = (type: string, data: Record<string, unknown>) => events.push({ type, sequence_number: events.length, ...data });
  push('response.created', { response: { ...done, status: 'in_progress', output: [], usage: null } });
  push('response.in_progress', { response: { ...done, status: 'in_progress', output: [], usage: null } });
  const items = options.items?.(req);
  if (items !== undefined) {
    for (const [index, item] of items.entries()) {
      push('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress' } });
      push('response.output_item.done', { output_index: index, item });
    }
    push('response.completed', { response: { ...done, output: items } });
    return { done: { ...done, output: items }, events };
  }
  push('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } });
  push('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
  for (const delta of pieces(reply.text)) push('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta });
  push('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text: reply.text });
  push('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: message.content[0] });
  push('response.output_item.done', { output_index: 0, item: message });
  push('response.completed', { response: done });
  return { done, events };
}

function responses(req: StandinRequest, res: ServerResponse, options: OpenAiOptions): true {
  const body = (req.json ?? {}) as { model?: string; stream?: boolean; input?: unknown };
  if (typeof body.model !== 'string' || body.input === undefined)
    return error(res, 400, "Missing required parameter: 'model' or 'input'.", 'missing_required_parameter');
  const { done, events } = responseEvents(req, options, body.model);
  if (body.stream !== true) return sendJson(res, 200, done);
  startSse(res);
  for (const event of events) res.write(sseEvent(event, String(event['type'])));
  res.end();
  return true;
}

/**
 * The Responses API over a WebSocket (what Codex tries first): each `response.create` message
 * gets the stream's events back as text messages, on one socket for the whole session. Each
 * message is kept in `messages` with the upgrade request it came on.
 */
export function openaiWebSocketHandler(options: OpenAiOptions & { messages?: unknown[] }): StandinWsHandler {
  const host = options.host ?? OPENAI_HOST;
  const path = `${options.basePath ?? '/v1'}/responses`;
  return (req) => {
    if (req.host !== host || req.path !== path) return undefined;
    const token = bearerOf(req);
    if (token === undefined || (!acceptsKey(options, token) && !acceptsAccessToken(options, token)))
      return {
        refuse: {
          status: 401,
          body: { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
        },
      };
    return {
      accept: (socket) => {
        socket.on('message', (data) => {
          let message: { type?: string; model?: string; input?: unknown } | undefined;
          try {
            message = JSON.parse(data.toString());
          } catch {
            message = undefined;
          }
          options.messages?.push(message);
          if (message?.type !== 'response.create' || typeof message.model !== 'string') {
            socket.send(
              JSON.stringify({ type: 'error', status: 400, error: { type: 'invalid_request_error', message: 'expected response.create with a model' } }),
            );
            return;
          }
          const asked: StandinRequest = { ...req, json: message, body: Buffer.from(data.toString()) };
          for (const event of responseEvents(asked, options, message.model).events) socket.send(JSON.stringify(event));
        });
      },
    };
  };
}

function chat(req: StandinRequest, res: ServerResponse, options: OpenAiOptions): true {
  const body = (req.json ?? {}) as { model?: string; stream?: boolean; messages?: unknown[]; stream_options?: { include_usage?: boolean } };
  if (typeof body.model !== 'string' || !Array.isArray(body.messages))
    return error(res, 400, "Missing required parameter: 'model' or 'messages'.", 'missing_required_parameter');
  const reply = replyFor(options.reply, req, 'Hello from the OpenAI stand-in.');
  const id = `chatcmpl-standin${randomBytes(8).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const model = reply.model ?? body.model;
  if (body.stream !== true) {
    return sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: reply.text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: chatUsage(reply.usage),
    });
  }
  startSse(res);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(sseEvent({ id, object: 'chat.completion.chunk', created, model, choices, ...extra }));
  const withUsage = body.stream_options?.include_usage === true;
  // With include_usage every chunk carries `usage: null` and one last chunk, with no choices, the counts.
  const usageNull = withUsage ? { usage: null } : {};
  chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], usageNull);
  for (const content of pieces(reply.text)) chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }], usageNull);
  chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usageNull);
  if (withUsage) chunk([], { usage: chatUsage(reply.usage) });
  res.end('data: [DONE]\n\n');
  return true;
}

/** The legacy Completions API: `choices[].text`, streamed as chunks of text with include_usage's last chunk. */
function completions(req: StandinRequest, res: ServerResponse, options: OpenAiOptions): true {
  const body = (req.json ?? {}) as { model?: string; stream?: boolean; prompt?: unknown; stream_options?: { include_usage?: boolean } };
  if (typeof body.model !== 'string' || body.prompt === undefined)
    return error(res, 400, "Missing required parameter: 'model' or 'prompt'.", 'missing_required_parameter');
  const reply = replyFor(options.reply, req, 'Hello from the OpenAI stand-in.');
  const id = `cmpl-standin${randomBytes(8).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const model = reply.model ?? body.model;
  const usage = { prompt_tokens: reply.usage.input, completion_tokens: reply.usage.output, total_tokens: reply.usage.input + reply.usage.output };
  if (body.stream !== true)
    return sendJson(res, 200, {
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ text: reply.text, index: 0, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  startSse(res);
  const withUsage = body.stream_options?.include_usage === true;
  for (const text of pieces(reply.text))
    res.write(
      sseEvent({
        id,
        object: 'text_completion',
        created,
        model,
        choices: [{ text, index: 0, logprobs: null, finish_reason: null }],
        ...(withUsage ? { usage: null } : {}),
      }),
    );
  if (withUsage) res.write(sseEvent({ id, object: 'text_completion', created, model, choices: [], usage }));
  res.end('data: [DONE]\n\n');
  return true;
}

/** Embeddings: one vector per input, usage in prompt_tokens (no output tokens). */
function embeddings(req: StandinRequest, res: ServerResponse, options: OpenAiOptions): true {
  const body = (req.json ?? {}) as { model?: string; input?: unknown };
  if (typeof body.model !== 'string' || body.input === undefined)
    return error(res, 400, "Missing required parameter: 'model' or 'input'.", 'missing_required_parameter');
  const reply = replyFor(options.reply, req, '');
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  return sendJson(res, 200, {
    object: 'list',
    data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.0123, -0.0456, 0.0789] })),
    model: reply.model ?? body.model,
    usage: { prompt_tokens: reply.usage.input, total_tokens: reply.usage.input },
  });
}
