// Approvals: requests that rules send to a person (approve: human). A person answers here, at the
// CLI (keyway approvals) or in the dashboard's inbox; the record in the store is the one truth, so
// an answer given at any replica lets go the request held at another. Nothing here shows a secret:
// a body is shown as a bounded, redacted preview made when the request was asked about.

import { parseDuration } from '../../config/duration.ts';
import { AdminError, KeywayError } from '../../errors/index.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { optionalString, readBody } from './json-input.ts';

const TAGS = ['approvals'];
const NOT_FOUND = errorResponse('No such approval (ended ones are kept a day)');
const ANSWERED = errorResponse('The approval is no longer pending: answered, expired, withdrawn by its client, or its keyway stopped');
const BAD_BODY = {
  '400': errorResponse('A field is of the wrong type, unknown, or refused (the message names it)'),
  '413': errorResponse('The body is over 64 KiB'),
  '415': errorResponse('The body is not Content-Type: application/json'),
};

export function approvalRoutes(deps: AdminDeps): Route[] {
  const answer = async (id: string, approve: boolean, body: Record<string, unknown>, by: string) => {
    const forText = optionalString(body, 'for');
    const forMs = forText === undefined ? undefined : parseDuration(forText);
    if (forText !== undefined && forMs === undefined) throw new AdminError('bad_request', `for: expected a duration such as 15m or 1h, got "${forText}"`);
    const pattern = body['pattern'];
    if (pattern !== undefined && typeof pattern !== 'boolean') throw new AdminError('bad_request', 'pattern: expected true or false');
    const result = await deps.approvals.decide(id, { approve, forMs, pattern: pattern === true, reason: optionalString(body, 'reason'), by, now: new Date() });
    if (!result.ok) throw new KeywayError(result.code, result.message);
    return { status: 200, body: { approval: result.record }, audit: { agent: result.record.agent, grant: result.record.grant } };
  };
  return [
    {
      method: 'GET',
      path: '/api/approvals',
      doc: {
        operationId: 'approvals.list',
        summary: 'Approvals waiting for a person (?state=all: also those answered or ended in the last day), newest first',
        tags: TAGS,
        parameters: [{ name: 'state', in: 'query', required: false, schema: { type: 'string', enum: ['pending', 'all'] } }],
        responses: { '200': jsonResponse('The approvals', { type: 'object', properties: { approvals: { type: 'array', items: { type: 'object' } } } }) },
      },
      handle: (ctx) => {
        const all = ctx.query.get('state') === 'all';
        return { status: 200, body: { approvals: deps.approvals.list().filter((r) => all || r.state === 'pending') } };
      },
    },
    {
      method: 'GET',
      path: '/api/approvals/{approval}',
      doc: { operationId: 'approvals.show', summary: 'One approval', tags: TAGS, responses: { '200': jsonResponse('The approval'), '404': NOT_FOUND } },
      handle: (ctx) => {
        const record = deps.approvals.get(ctx.params['approval'] ?? '');
        if (!record) throw new AdminError('not_found', `no approval ${ctx.params['approval']}`);
        return { status: 200, body: { approval: record } };
      },
    },
    {
      method: 'POST',
      path: '/api/approvals/{approval}/approve',
      doc: {
        operationId: 'approvals.approve',
        summary:
          "Let the request through: once, or for a window (`for`, up to 24h; default the rule's approval.window) on the same agent, grant, method and exact path; `pattern: true` widens the window to the rule's paths",
        tags: TAGS,
        requestBody: jsonBody({ type: 'object', properties: { for: { type: 'string', examples: ['15m'] }, pattern: { type: 'boolean' } } }, false),
        responses: { '200': jsonResponse('The answered approval'), ...BAD_BODY, '404': NOT_FOUND, '409': ANSWERED },
      },
      handle: async (ctx) => answer(ctx.params['approval'] ?? '', true, await readBody(ctx, ['for', 'pattern'], true), ctx.actor ?? 'token'),
    },
    {
      method: 'POST',
      path: '/api/approvals/{approval}/deny',
      doc: {
        operationId: 'approvals.deny',
        summary: 'Refuse the request: the agent gets 403 approval_denied, with the reason if one is given',
        tags: TAGS,
        requestBody: jsonBody({ type: 'object', properties: { reason: { type: 'string' } } }, false),
        responses: { '200': jsonResponse('The answered approval'), ...BAD_BODY, '404': NOT_FOUND, '409': ANSWERED },
      },
      handle: async (ctx) => answer(ctx.params['approval'] ?? '', false, await readBody(ctx, ['reason'], true), ctx.actor ?? 'token'),
    },
  ];
}
