// POST /slack/interactivity: where Slack sends the clicks on keyway's approval messages, with
// approvals.slack mode: http (src/approvals/slack/http.ts says what it admits). Open (Slack has no
// admin token): its signing secret's v0 signature over the raw body is the credential. The desk
// writes the approval's audit line for a click taken; the room one for a refused callback
// (approvals/slack/refused.ts). A body over 64 KiB is refused before anything reads it, unaudited.
import { AdminError } from '../../errors/index.ts';
import { MAX_CALLBACK_BYTES } from '../../approvals/slack/http.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

export function slackRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/slack/interactivity',
      open: true,
      auditsItself: true,
      doc: {
        operationId: 'slack.interactivity',
        summary: "Slack's interactivity callback for approval buttons (approvals.slack mode: http), verified by its v0 signature",
        tags: ['approvals'],
        responses: {
          '200': { description: 'Received (an empty body, at once): the click is then taken, or refused with the reason told to the clicker in Slack' },
          '400': errorResponse('Not one form field, payload, of JSON'),
          '401': errorResponse('A missing, wrong or stale signature'),
          '404': errorResponse('Slack approvals are not set with mode: http'),
          '413': errorResponse('A body over 64 KiB'),
        },
      },
      handle: async (ctx) => {
        const answer = deps.slackInteractivity?.();
        if (answer === undefined) throw new AdminError('not_found', 'Slack approvals are not set with mode: http (approvals.slack)');
        const chunks: Buffer[] = [];
        let bytes = 0;
        for await (const chunk of ctx.req) {
          bytes += (chunk as Buffer).length;
          if (bytes > MAX_CALLBACK_BYTES) throw new AdminError('body_too_large', 'a Slack callback is at most 64 KiB');
          chunks.push(chunk as Buffer);
        }
        const header = (name: string) => {
          const value = ctx.req.headers[name];
          return typeof value === 'string' ? value : undefined;
        };
        const reply = await answer({
          rawBody: Buffer.concat(chunks),
          timestamp: header('x-slack-request-timestamp'),
          signature: header('x-slack-signature'),
          client: ctx.client,
        });
        if (reply.status !== 200) throw new AdminError(reply.code, reply.message);
        // Empty: Slack reads a JSON answer to a modal's submission as a response_action.
        ctx.res.writeHead(200, { 'content-length': '0' });
        ctx.res.end();
        return { streamed: true, status: 200 };
      },
    },
  ];
}
