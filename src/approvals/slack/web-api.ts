import { type Dispatcher, requestUrl } from '../../net/undici.ts';

// The few Slack Web API methods keyway calls, over undici (the token-endpoint client: proxy.hosts,
// proxy.upstream_ca and egress.proxy apply as to every other call keyway makes itself). Not
// @slack/web-api: four JSON POSTs do not need a dependency with its own HTTP stack, retry policy
// and logger, none of which would honour keyway's egress settings or keep tokens out of its logs.
// A token goes in the Authorization header only, and an error names the method and Slack's error
// code, never the token or the body.

const CALL_TIMEOUT_MS = 10_000;

export class SlackCallError extends Error {
  readonly method: string;
  readonly code: string;
  constructor(method: string, code: string) {
    super(`Slack ${method}: ${code}`);
    this.method = method;
    this.code = code;
  }
}

export interface SlackWebApi {
  call(method: string, token: string, body: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export function slackWebApi(apiUrl: string, dispatcher: Dispatcher | undefined): SlackWebApi {
  const base = apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
  return {
    async call(method, token, body) {
      let answer: Awaited<ReturnType<typeof requestUrl>>;
      try {
        answer = await requestUrl(new URL(method, base), {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${token}`, 'user-agent': 'keyway' },
          body: JSON.stringify(body),
          headersTimeout: CALL_TIMEOUT_MS,
          bodyTimeout: CALL_TIMEOUT_MS,
        });
      } catch (err) {
        throw new SlackCallError(method, (err as NodeJS.ErrnoException).code ?? (err as Error).name);
      }
      const text = await answer.body.text();
      if (answer.statusCode !== 200) throw new SlackCallError(method, `HTTP ${answer.statusCode}`);
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new SlackCallError(method, 'an answer that is not JSON');
      }
      if (json['ok'] !== true) throw new SlackCallError(method, typeof json['error'] === 'string' ? json['error'].slice(0, 80) : 'not ok');
      return json;
    },
  };
}
