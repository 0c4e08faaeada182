// The parts of ChatGPT's backend (chatgpt.com/backend-api) that Codex asks under a ChatGPT login
// before its first turn: the account check it routes its workspace by (a failure there stops the turn),
// and the model catalogue (a failure there is only logged). The Codex Responses routes themselves
// are openai.ts mounted at /backend-api/codex.
import { type Accepts, acceptsAccessToken } from './replies.ts';
import { bearerOf, type StandinHandler, sendJson } from './server.ts';
import { CHATGPT_ACCOUNT_ID } from './chatgpt-login.ts';

export function chatgptBackendHandler(options: Accepts & { host?: string }): StandinHandler {
  const host = options.host ?? 'chatgpt.com';
  return (req, res) => {
    if (req.host !== host || !req.path.startsWith('/backend-api/')) return false;
    const catalogue = req.method === 'GET' && req.path === '/backend-api/codex/models';
    if (req.path.startsWith('/backend-api/codex/') && !catalogue) return false;
    if (!acceptsAccessToken(options, bearerOf(req))) return sendJson(res, 401, { detail: 'Unauthorized' });
    // No models of the backend's own: Codex keeps its built-in list (list this handler before openai.ts's).
    if (catalogue) return sendJson(res, 200, { models: [] });
    if (req.method === 'GET' && req.path === '/backend-api/wham/accounts/check') {
      // One personal account, served from this same backend (its origin is where Codex sends the turn).
      return sendJson(res, 200, {
        accounts: [
          {
            id: CHATGPT_ACCOUNT_ID,
            name: null,
            plan_type: 'pro',
            structure: 'personal',
            profile_picture_url: null,
            workspace_backend_origin: `https://${host}`,
            account_routing_override: 'NO_CONSTRAINT',
          },
        ],
        account_ordering: [CHATGPT_ACCOUNT_ID],
        default_account_id: CHATGPT_ACCOUNT_ID,
      });
    }
    return sendJson(res, 404, { detail: 'Not Found' });
  };
}
