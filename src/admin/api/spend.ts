// GET /api/spend: what `keyway spend --json` prints, from the same reader (operations/spend.ts),
// for scripts and the dashboard's Spend page. Ids, model names, counts and dollars: no secret.

import { AdminError, KeywayError } from '../../errors/index.ts';
import { budgetsOf } from '../../operations/spend-budgets.ts';
import { spendReport } from '../../operations/spend.ts';
import { spendSince } from '../../operations/spend-window.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

const PARAMETERS = ['agent', 'grant', 'since'] as const;

const COUNT = { type: 'integer', minimum: 0 };
const COUNTS = {
  requests: COUNT,
  input_tokens: { ...COUNT, description: 'Every input token, cached ones included' },
  output_tokens: { ...COUNT, description: 'Every output token, reasoning included' },
  cached_input_tokens: { ...COUNT, description: 'Of input_tokens: read from the prompt cache' },
  cache_write_tokens: { ...COUNT, description: 'Of input_tokens: written to the prompt cache' },
  cost_usd: { type: 'number', minimum: 0, description: 'USD for the priced answers (those priced at the fallback included), to 1e-9' },
  unpriced: { ...COUNT, description: 'Answers whose model had no price (tokens counted; a cost only at the fallback): add the model under pricing:' },
  unknown: { ...COUNT, description: 'Answers that said nothing of their usage (counted as requests; tokens only when estimated)' },
  partial: { ...COUNT, description: 'Answers cut short, counted for what was delivered' },
  fallback: { ...COUNT, description: 'Of unpriced: priced at the fallback (the vendor’s highest shipped price, or your "*" entry) under a budget in dollars' },
  estimated: { ...COUNT, description: 'Of unknown: counted at an estimate from their bytes (4 bytes a token) under a budget' },
};
const NULLABLE = { type: ['string', 'null'] };
const REPORT_SCHEMA = {
  type: 'object',
  required: ['since', 'until', 'totals', 'rows', 'budgets'],
  properties: {
    since: {
      type: 'string',
      description:
        'The window’s start: the top of the UTC hour `since` fell in, or that day’s midnight when the day is older than the last two full UTC days (kept per day, counted whole)',
    },
    until: { type: 'string', description: 'When it was read' },
    totals: { type: 'object', properties: COUNTS },
    rows: {
      type: 'array',
      description: 'One per agent, grant, end user and model (null: anonymous agent, no end user, no model named)',
      items: { type: 'object', properties: { agent: NULLABLE, grant: NULLABLE, end_user: NULLABLE, model: NULLABLE, ...COUNTS } },
    },
    budgets: {
      type: 'array',
      description: 'Each budget of the config and where it stands now; a `*` budget has one row per value counted this period',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          agent: { type: 'string' },
          grant: { type: 'string' },
          end_user: { type: 'string' },
          scope: { type: 'string' },
          unit: { type: 'string', enum: ['usd', 'tokens'] },
          limit: { type: 'number' },
          used: { type: 'number' },
          per: { type: 'string', enum: ['hour', 'day', 'month'] },
          resets_at: { type: 'string' },
          over: { type: 'string', enum: ['refuse', 'approve'] },
          warn_at: { type: 'number' },
          fallback: { ...COUNT, description: 'Answers this period in what the row counts priced at the fallback' },
          estimated: { ...COUNT, description: 'Answers this period in what the row counts estimated from their bytes' },
        },
      },
    },
  },
};

export function spendRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/spend',
      doc: {
        operationId: 'spend',
        summary: 'Model tokens and cost per agent, grant, end user and model, with totals, and where each budget stands (what `keyway spend --json` prints)',
        tags: ['spend'],
        parameters: [
          {
            name: 'agent',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'Only this agent’s traffic, and the budgets that can count it',
          },
          {
            name: 'grant',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'Only this grant’s traffic, and the budgets that can count it',
          },
          {
            name: 'since',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description:
              'An ISO date or date-time (UTC without a zone), or a duration back from now (24h, 7d); from the top of its UTC hour (of its UTC day when that day is older than the last two full UTC days: usage is kept per day then). Default: the start of the UTC month',
          },
        ],
        responses: {
          '200': jsonResponse('The spend in the window', REPORT_SCHEMA),
          '400': errorResponse('A since that does not parse or is in the future, a parameter given twice, or an unknown parameter'),
        },
      },
      handle: (ctx) => {
        const query: Partial<Record<(typeof PARAMETERS)[number], string>> = {};
        for (const key of new Set(ctx.query.keys())) {
          // The name is not echoed: a mistyped parameter may hold anything.
          if (!(PARAMETERS as readonly string[]).includes(key)) throw badRequest(`unknown query parameter; expected any of ${PARAMETERS.join(', ')}`);
          const values = ctx.query.getAll(key);
          if (values.length > 1) throw badRequest(`${key}: give it once`);
          query[key as (typeof PARAMETERS)[number]] = values[0];
        }
        const now = new Date();
        let since: Date;
        try {
          since = spendSince(query.since, now, 'since');
        } catch (err) {
          throw err instanceof KeywayError ? badRequest(err.message) : err;
        }
        const { services } = deps;
        return {
          status: 200,
          body: spendReport(services.store, budgetsOf(services.config, services.store), { since, now, agent: query.agent, grant: query.grant }),
        };
      },
    },
  ];
}

function badRequest(message: string): AdminError {
  return new AdminError('bad_request', message);
}
