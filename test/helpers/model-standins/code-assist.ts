// Google's Code Assist API (cloudcode-pa.googleapis.com/v1internal), as a stand-in: what Gemini CLI
// speaks under a Google login instead of the Gemini API. loadCodeAssist says the account's tier and
// project (set up already, so no onboarding), and :streamGenerateContent?alt=sse / :generateContent
// answer the Gemini API's response wrapped as `{response, traceId}`. Bearer tokens only; a token it
// did not issue is 401 UNAUTHENTICATED, as Google answers.
import { type Accepts, acceptsAccessToken, pieces, type ReplySource, replyFor } from './replies.ts';
import { bearerOf, type StandinHandler, sendJson, sseEvent, startSse } from './server.ts';
import { candidateChunk } from './gemini.ts';

export const CODE_ASSIST_HOST = 'cloudcode-pa.googleapis.com';
export const CODE_ASSIST_PROJECT = 'standin-project-0001';

export function codeAssistHandler(options: Accepts & { reply?: ReplySource; host?: string }): StandinHandler {
  const host = options.host ?? CODE_ASSIST_HOST;
  return (req, res) => {
    if (req.host !== host || !req.path.startsWith('/v1internal:')) return false;
    if (!acceptsAccessToken(options, bearerOf(req)))
      return sendJson(res, 401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } });
    const method = req.path.slice('/v1internal:'.length);
    if (method === 'loadCodeAssist') {
      return sendJson(res, 200, {
        currentTier: { id: 'standard-tier', name: 'Gemini Code Assist', hasOnboardedPreviously: true },
        allowedTiers: [{ id: 'standard-tier', name: 'Gemini Code Assist', isDefault: true }],
        cloudaicompanionProject: CODE_ASSIST_PROJECT,
      });
    }
    // Asked at start; empty answers are what an account with no experiments and no quota report gets.
    if (method === 'listExperiments') return sendJson(res, 200, { experimentIds: [], flags: [] });
    if (method === 'retrieveUserQuota') return sendJson(res, 200, { buckets: [] });
    const body = (req.json ?? {}) as { model?: string; project?: string; request?: { contents?: unknown[] } };
    if (method !== 'streamGenerateContent' && method !== 'generateContent')
      return sendJson(res, 404, { error: { code: 404, message: `Method not found: ${method}`, status: 'NOT_FOUND' } });
    if (typeof body.model !== 'string' || !Array.isArray(body.request?.contents))
      return sendJson(res, 400, { error: { code: 400, message: 'model and request.contents are required', status: 'INVALID_ARGUMENT' } });
    const reply = replyFor(options.reply, req, 'Hello from the Code Assist stand-in.');
    const model = reply.model ?? body.model;
    const wrap = (response: Record<string, unknown>) => ({ response, traceId: 'standin-trace' });
    if (method === 'generateContent') return sendJson(res, 200, wrap(candidateChunk(reply.text, model, { usage: reply.usage })));
    const parts = pieces(reply.text);
    startSse(res);
    for (const [i, text] of parts.entries())
      res.write(sseEvent(wrap(candidateChunk(text, model, i === parts.length - 1 ? { usage: reply.usage } : undefined))));
    res.end();
    return true;
  };
}
