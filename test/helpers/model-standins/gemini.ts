// Google's Gemini API (generativelanguage.googleapis.com), as a stand-in: POST
// /v1beta/models/MODEL:generateContent, :streamGenerateContent (with `?alt=sse` one JSON answer per
// event, without it one JSON array) and :countTokens, each answer with `usageMetadata`. The key comes in
// `x-goog-api-key` or `?key=`; an OAuth token as `Authorization: Bearer`. Refusals are Google's: a
// key it does not know is 400 INVALID_ARGUMENT (reason API_KEY_INVALID), no credential at all 403
// PERMISSION_DENIED, a bad bearer token 401 UNAUTHENTICATED, as the real API answers each.
import type { ServerResponse } from 'node:http';
import { type Accepts, acceptsAccessToken, acceptsKey, type ModelReply, pieces, type ReplySource, replyFor } from './replies.ts';
import { bearerOf, headerOf, type StandinHandler, type StandinRequest, sendJson, sseEvent, startSse } from './server.ts';

export const GEMINI_HOST = 'generativelanguage.googleapis.com';

export interface GeminiOptions extends Accepts {
  reply?: ReplySource;
  host?: string;
  /** An image (base64) answered inline in the last response, per request: an image model's answer (issue 85: tens of MiB). */
  image?: (req: StandinRequest) => string | undefined;
  /**
   * Every response of a stream carries usageMetadata, a running count (as Gemini sends it): the
   * earlier ones the prompt and one output token per response so far, the last the whole usage.
   */
  runningUsage?: boolean;
}

function googleError(res: ServerResponse, code: number, status: string, message: string, reason?: string): true {
  const details =
    reason === undefined ? [] : [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata: { service: GEMINI_HOST } }];
  return sendJson(res, code, { error: { code, message, status, details } });
}

export function usageMetadata(usage: ModelReply['usage']): Record<string, number> {
  return {
    promptTokenCount: usage.input,
    candidatesTokenCount: usage.output - (usage.reasoning ?? 0),
    totalTokenCount: usage.input + usage.output,
    ...(usage.cacheRead === undefined ? {} : { cachedContentTokenCount: usage.cacheRead }),
    ...(usage.reasoning === undefined ? {} : { thoughtsTokenCount: usage.reasoning }),
  };
}

/**
 * One GenerateContentResponse: a candidate holding `text` (and an `image` inline), with usage and a
 * finish reason on the last; `running` is the usage an earlier one carries, if any.
 */
export function candidateChunk(
  text: string,
  model: string,
  last: { usage: ModelReply['usage'] } | undefined,
  extra: { image?: string | undefined; running?: ModelReply['usage'] | undefined } = {},
): Record<string, unknown> {
  const parts: Array<Record<string, unknown>> = [{ text }];
  if (extra.image !== undefined) parts.push({ inlineData: { mimeType: 'image/png', data: extra.image } });
  const usage = last?.usage ?? extra.running;
  return {
    candidates: [{ content: { parts, role: 'model' }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }],
    ...(usage ? { usageMetadata: usageMetadata(usage) } : {}),
    modelVersion: model,
    responseId: 'standin-response',
  };
}

/** The model and method of /v1beta/models/MODEL:METHOD (also /v1/…). */
function modelCall(path: string): { model: string; method: string } | undefined {
  const match = /^\/v1(?:beta)?\/models\/([^/:]+):([A-Za-z]+)$/.exec(path);
  return match ? { model: match[1]!, method: match[2]! } : undefined;
}

export function geminiHandler(options: GeminiOptions): StandinHandler {
  const host = options.host ?? GEMINI_HOST;
  return (req, res) => {
    if (req.host !== host) return false;
    const refused = checkCredential(req, res, options);
    if (refused) return true;
    const call = modelCall(req.path);
    if (req.method !== 'POST' || call === undefined) return googleError(res, 404, 'NOT_FOUND', `Not found: ${req.method} ${req.path}`);
    const body = (req.json ?? {}) as { contents?: unknown[] };
    if (call.method === 'countTokens') return sendJson(res, 200, { totalTokens: 42 });
    if (!Array.isArray(body.contents)) return googleError(res, 400, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified');
    const reply = replyFor(options.reply, req, 'Hello from the Gemini stand-in.');
    const model = reply.model ?? call.model;
    const image = options.image?.(req);
    if (call.method === 'generateContent') return sendJson(res, 200, candidateChunk(reply.text, model, { usage: reply.usage }, { image }));
    if (call.method !== 'streamGenerateContent') return googleError(res, 404, 'NOT_FOUND', `Unknown method ${call.method}`);
    const parts = pieces(reply.text);
    const chunks = parts.map((text, i) => {
      if (i === parts.length - 1) return candidateChunk(text, model, { usage: reply.usage }, { image });
      return candidateChunk(text, model, undefined, { running: options.runningUsage ? { input: reply.usage.input, output: i + 1 } : undefined });
    });
    if (req.query.get('alt') === 'sse') {
      startSse(res);
      for (const chunk of chunks) res.write(sseEvent(chunk));
      res.end();
      return true;
    }
    return sendJson(res, 200, chunks);
  };
}

/** Answers a request whose credential the stand-in does not take; false when it may go on. */
function checkCredential(req: StandinRequest, res: ServerResponse, options: Accepts): boolean {
  const key = headerOf(req, 'x-goog-api-key') ?? req.query.get('key') ?? undefined;
  const token = bearerOf(req);
  if (key !== undefined) {
    if (acceptsKey(options, key)) return false;
    return googleError(res, 400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', 'API_KEY_INVALID');
  }
  if (token !== undefined) {
    if (acceptsAccessToken(options, token)) return false;
    return googleError(
      res,
      401,
      'UNAUTHENTICATED',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      'ACCESS_TOKEN_TYPE_UNSUPPORTED',
    );
  }
  return googleError(
    res,
    403,
    'PERMISSION_DENIED',
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
  );
}
