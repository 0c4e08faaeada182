// The audit log through the admin API: a filtered query a page at a time, and a live tail as
// Server-Sent Events. Every line passed on is the line as the file holds it (secret-free by
// construction: the writer never gets a token, a header value or a query string).

import {
  auditDatabaseOf,
  fileSource,
  MAX_AUDIT_PAGE,
  parseAuditFilter,
  tableSource,
  type AuditFilter,
  type AuditFilterText,
  type AuditOrder,
} from '../../audit/index.ts';
import { AuditStreams } from '../audit-streams.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { AdminError } from '../../errors/index.ts';

const TAGS = ['audit'];
const FILTERS = ['agent', 'grant', 'decision', 'code', 'host', 'since', 'until'] as const;
const DEFAULT_LIMIT = 100;

const filterParameters = (fields: readonly string[]) =>
  fields.map((name) => ({
    name,
    in: 'query',
    required: false,
    schema: { type: 'string' },
    description:
      name === 'since' || name === 'until'
        ? `${name === 'since' ? 'Lines at or after' : 'Lines before'}: an ISO date, or a duration ago (15m, 2h, 7d)`
        : name === 'decision'
          ? 'inject, tunnel, deny, error or admin'
          : `Only lines whose ${name} is this`,
  }));

export function auditRoutes(deps: AdminDeps): Route[] {
  // audit.sink: the file (default), or the table of every replica's chain in the store's database.
  const db = auditDatabaseOf(deps.services.config, deps.env);
  const source = db === null ? fileSource(deps.services.paths.audit) : tableSource(db);
  const streams = new AuditStreams(source, deps.closing);
  return [
    {
      method: 'GET',
      path: '/api/audit',
      doc: {
        operationId: 'audit.query',
        summary: 'Audit lines matching the filters of `keyway audit query`, a page at a time',
        description:
          'Newest first by default (order=asc: oldest first, as the CLI prints). Pass the answer’s `next` back as `cursor` for the next page; pages are cut at a line’s seq, so appending and rotation move nothing between pages.',
        tags: TAGS,
        parameters: [
          ...filterParameters(FILTERS),
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: MAX_AUDIT_PAGE, default: DEFAULT_LIMIT } },
          { name: 'order', in: 'query', required: false, schema: { type: 'string', enum: ['desc', 'asc'], default: 'desc' } },
          { name: 'cursor', in: 'query', required: false, schema: { type: 'string' }, description: 'The `next` of the previous page' },
        ],
        responses: {
          '200': jsonResponse('A page of lines; `next` is null on the last', {
            type: 'object',
            properties: { lines: { type: 'array', items: { type: 'object' } }, next: { type: ['string', 'null'] } },
          }),
          '400': errorResponse('A filter, limit, order or cursor that does not parse, or an unknown parameter'),
        },
      },
      handle: async (ctx) => {
        const query = readQuery(ctx.query, [...FILTERS, 'limit', 'order', 'cursor']);
        const filter = filterOf(query);
        const limit = query['limit'] === undefined ? DEFAULT_LIMIT : Number(query['limit']);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) throw badRequest(`limit: expected a whole number from 1 to ${MAX_AUDIT_PAGE}`);
        const order = query['order'] ?? 'desc';
        if (order !== 'desc' && order !== 'asc') throw badRequest('order: expected desc or asc');
        const page = await source.page({ filter, limit, order: order as AuditOrder, cursor: query['cursor'] });
        return { status: 200, body: page };
      },
    },
    {
      method: 'GET',
      path: '/api/audit/stream',
      doc: {
        operationId: 'audit.stream',
        summary: 'Each new audit line as it is written, as Server-Sent Events (`event: audit`, `id:` the line’s seq, `data:` the line)',
        description:
          'Same filters as GET /api/audit (without paging). Heartbeat comments every 15 s; `retry:` is sent first. Reconnecting with Last-Event-ID replays the matching lines written since (up to 1000). A reader that stops reading is cut off. Ends when keyway stops.',
        tags: TAGS,
        parameters: [
          ...filterParameters(FILTERS),
          {
            name: 'Last-Event-ID',
            in: 'header',
            required: false,
            schema: { type: 'string' },
            description: 'Resume after this event (the id of the last event received)',
          },
        ],
        responses: {
          '200': { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          '400': errorResponse('A filter or Last-Event-ID that does not parse, or an unknown parameter'),
          '429': errorResponse('Too many audit streams are open'),
          '503': errorResponse('keyway is stopping'),
        },
      },
      handle: async (ctx) => {
        const filter = filterOf(readQuery(ctx.query, FILTERS));
        const header = ctx.req.headers['last-event-id'];
        let lastId: string | undefined;
        if (typeof header === 'string' && header !== '') {
          if (!source.isEventId(header)) throw badRequest('Last-Event-ID: expected the id of an audit event this stream sent');
          lastId = header;
        }
        await streams.serve(ctx.res, filter, lastId);
        return { streamed: true, status: 200 };
      },
    },
  ];
}

/** The query's parameters, each at most once; an unknown one is refused (a typo would silently widen a filter). */
function readQuery(query: URLSearchParams, known: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of new Set(query.keys())) {
    // The name is not echoed: a mistyped parameter may hold anything.
    if (!known.includes(key)) throw badRequest(`unknown query parameter; expected any of ${known.join(', ')}`);
    const values = query.getAll(key);
    if (values.length > 1) throw badRequest(`${key}: give it once`);
    out[key] = values[0];
  }
  return out;
}

function filterOf(query: Record<string, string | undefined>): AuditFilter {
  const text: AuditFilterText = {};
  for (const key of FILTERS) if (query[key] !== undefined) text[key] = query[key];
  return parseAuditFilter(text);
}

function badRequest(message: string): AdminError {
  return new AdminError('bad_request', message);
}
