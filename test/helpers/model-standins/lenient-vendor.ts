// A model vendor that serves more than it should, for the spend attacks (issue 63): the worst a
// real vendor's front might do with what a hostile agent sends. It routes paths loosely (any case,
// a trailing slash, `;params`, `%2F`, `//`), runs a POST named by X-HTTP-Method-Override on any
// method, honours Google's system parameters (`fields`, `$fields`, X-Goog-FieldMask, `alt`,
// `$alt`), compresses what it is asked to (Accept-Encoding), reads a body with a BOM or gzipped,
// and bills every answer it gives: `billed` is what the vendor would charge, to compare with what
// keyway counted.
import type { ServerResponse } from 'node:http';
import { brotliCompressSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import { headerOf, type StandinHandler, type StandinRequest } from './server.ts';

export const BILLED_USAGE = { input: 1000, output: 500 } as const;
export const BILLED_TOKENS = BILLED_USAGE.input + BILLED_USAGE.output;

export interface Billed {
  host: string;
  path: string;
  tokens: number;
}

/** Text a few deltas long, so a stream has output to count. */
const TEXT = ['The answer ', 'that a vendor ', 'bills for.'];

export function lenientVendor(billed: Billed[]): StandinHandler {
  return (req, res) => {
    const method = (headerOf(req, 'x-http-method-override') ?? req.method).toUpperCase();
    if (method !== 'POST') return false;
    const route = looseRoute(req.path);
    if (route === undefined) return false;
    const body = bodyOf(req);
    if (body === undefined) return false;
    // Embeddings have no output tokens.
    billed.push({ host: req.host, path: req.path, tokens: route.endsWith('/embeddings') ? BILLED_USAGE.input : BILLED_TOKENS });
    if (req.host === 'api.anthropic.com' && route.endsWith('/v1/messages')) return anthropic(req, res, body);
    if (req.host === 'api.openai.com' && route.endsWith('/chat/completions')) return openaiChat(req, res, body);
    if (req.host === 'api.openai.com' && route.endsWith('/embeddings')) return embeddings(req, res, body);
    if (req.host === 'generativelanguage.googleapis.com' && /\/models\/[^/:]+:(?:stream)?generatecontent$/.test(route)) return gemini(req, res, route);
    billed.pop();
    return false;
  };
}

/** The path as a loose router reads it: decoded, lower case, `;params` and repeated or trailing slashes dropped. */
function looseRoute(path: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  return decoded
    .toLowerCase()
    .replace(/;[^/]*/g, '')
    .replace(/\/{2,}/g, '/')
    .replace(/\/$/, '');
}

/** The request's JSON, read leniently (gzip, a BOM, any content type); undefined when it is none. */
function bodyOf(req: StandinRequest): Record<string, unknown> | undefined {
  let bytes = req.body;
  if (headerOf(req, 'content-encoding') === 'gzip') bytes = gunzipSync(bytes);
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `text` compressed as the client asked (the first coding it names that the vendor has). */
function send(req: StandinRequest, res: ServerResponse, type: string, text: string): true {
  const accept = headerOf(req, 'accept-encoding') ?? '';
  const coding = ['br', 'gzip', 'deflate'].find((c) => accept.split(',').some((a) => a.trim().split(';')[0] === c));
  const raw = Buffer.from(text);
  const bytes = coding === 'br' ? brotliCompressSync(raw) : coding === 'gzip' ? gzipSync(raw) : coding === 'deflate' ? deflateSync(raw) : raw;
  res.writeHead(200, { 'content-type': type, ...(coding === undefined ? {} : { 'content-encoding': coding }) });
  res.end(bytes);
  return true;
}

const sse = (data: unknown, event?: string) => `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;

function anthropic(req: StandinRequest, res: ServerResponse, body: Record<string, unknown>): true {
  const model = String(body['model'] ?? 'claude-test-1');
  const usage = { input_tokens: BILLED_USAGE.input, output_tokens: BILLED_USAGE.output };
  if (body['stream'] !== true)
    return send(req, res, 'application/json', JSON.stringify({ type: 'message', model, content: [{ type: 'text', text: TEXT.join('') }], usage }));
  let out = sse({ type: 'message_start', message: { model, usage: { input_tokens: BILLED_USAGE.input, output_tokens: 1 } } }, 'message_start');
  for (const text of TEXT) out += sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta');
  out += sse({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: BILLED_USAGE.output } }, 'message_delta');
  out += sse({ type: 'message_stop' }, 'message_stop');
  return send(req, res, 'text/event-stream', out);
}

function openaiChat(req: StandinRequest, res: ServerResponse, body: Record<string, unknown>): true {
  const model = String(body['model'] ?? 'gpt-test-1');
  const usage = { prompt_tokens: BILLED_USAGE.input, completion_tokens: BILLED_USAGE.output, total_tokens: BILLED_TOKENS };
  // A vendor that reads `stream` loosely: the string "true" streams too.
  const stream = body['stream'] === true || body['stream'] === 'true';
  if (!stream)
    return send(req, res, 'application/json', JSON.stringify({ object: 'chat.completion', model, choices: [{ message: { content: TEXT.join('') } }], usage }));
  const options = body['stream_options'] as { include_usage?: unknown } | undefined;
  let out = '';
  for (const text of TEXT) out += sse({ object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: text } }] });
  if (options?.include_usage === true) out += sse({ object: 'chat.completion.chunk', model, choices: [], usage });
  out += 'data: [DONE]\n\n';
  return send(req, res, 'text/event-stream', out);
}

function gemini(req: StandinRequest, res: ServerResponse, route: string): true {
  const usageMetadata = { promptTokenCount: BILLED_USAGE.input, candidatesTokenCount: BILLED_USAGE.output, totalTokenCount: BILLED_TOKENS };
  // Google's system parameters: a field mask leaves out what it does not name.
  const mask = req.query.get('fields') ?? req.query.get('$fields') ?? headerOf(req, 'x-goog-fieldmask');
  const withUsage = mask === undefined || mask === null || /usageMetadata|\*/.test(mask);
  const chunk = (text: string, last: boolean) => ({
    candidates: [{ content: { parts: [{ text }], role: 'model' } }],
    ...(last && withUsage ? { usageMetadata } : {}),
    modelVersion: 'gemini-test-1',
  });
  const alt = req.query.get('alt') ?? req.query.get('$alt') ?? 'json';
  const chunks = route.endsWith(':streamgeneratecontent') ? TEXT.map((t, i) => chunk(t, i === TEXT.length - 1)) : [chunk(TEXT.join(''), true)];
  if (alt === 'sse') return send(req, res, 'text/event-stream', chunks.map((c) => sse(c)).join(''));
  if (alt === 'json') return send(req, res, 'application/json', JSON.stringify(route.endsWith(':streamgeneratecontent') ? chunks : chunks[0]));
  // alt=proto and the like: bytes that are not JSON (a stand-in for protobuf).
  return send(req, res, 'application/x-protobuf', `\x0a\x10${TEXT.join('')}`);
}

/** One vector of 3,072 floats per input, as text-embedding-3-large answers: a few hundred inputs make an answer of many MiB. */
function embeddings(req: StandinRequest, res: ServerResponse, body: Record<string, unknown>): true {
  const inputs = Array.isArray(body['input']) ? body['input'] : [body['input']];
  const vector = Array.from({ length: 3072 }, (_, i) => -0.0123456789012345 + i * 1e-9);
  const data = inputs.map((_, index) => ({ object: 'embedding', index, embedding: vector }));
  const usage = { prompt_tokens: BILLED_USAGE.input, total_tokens: BILLED_USAGE.input };
  return send(req, res, 'application/json', JSON.stringify({ object: 'list', data, model: String(body['model'] ?? 'text-embedding-3-large'), usage }));
}
