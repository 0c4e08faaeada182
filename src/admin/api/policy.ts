// GET /api/policy: the policy in effect (hash, Cedar files, policy ids) and what lint says of it.
// POST /api/policy/test: the audit log's requests judged again under a candidate's Cedar text (or
// the policy in effect), answering the verdicts that differ: `keyway policy test --json`'s shape.
// Neither contacts an upstream or reads a secret; the candidate is never put in effect.

import { parseAuditTime } from '../../audit/read/filter.ts';
import { AdminError, KeywayError } from '../../errors/index.ts';
import { storedRouting } from '../../operations/policy-routing.ts';
import { loadCurrentPolicy, loadPolicyText } from '../../proofs/engine.ts';
import { candidateOf } from '../../proofs/judge.ts';
import { lintHome } from '../../proofs/lint.ts';
import { loggedRequests, replayAgainstLog } from '../../proofs/replay.ts';
import { testReportJson } from '../../proofs/report.ts';
import { scopesOf } from '../../proofs/scope.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { optionalString, readBody } from './json-input.ts';

/** A candidate's Cedar text past this is refused: a policy set, not a corpus. */
const MAX_CANDIDATE = 256 * 1024;
const REQUEST = {
  type: 'object',
  required: ['seq', 'ts', 'agent', 'method', 'host', 'port', 'path'],
  properties: {
    seq: { type: 'integer' },
    ts: { type: 'string' },
    agent: { type: 'string' },
    grant: { type: ['string', 'null'] },
    method: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'integer' },
    path: { type: 'string', description: 'As recorded: normalised, without the query' },
    policy: { type: ['string', 'null'], description: 'The hash of the policy the line was decided under, where it carries one' },
  },
};
const FINDING = {
  type: 'object',
  properties: {
    severity: { type: 'string', enum: ['error', 'warning'] },
    at: { type: 'string', description: 'FILE:LINE:COLUMN, or the policy’s origin' },
    policy: { type: ['string', 'null'] },
    message: { type: 'string' },
  },
};
const POLICY_SCHEMA = {
  type: 'object',
  required: ['hash', 'files', 'policies', 'lint'],
  properties: {
    hash: {
      type: ['string', 'null'],
      description:
        '`sha256:` and the hex of the compiled policy set on disk, as audit lines carry it; null when it does not load (lint says why; a running keyway keeps the policy it loaded last)',
    },
    files: { type: 'array', items: { type: 'string' }, description: 'The Cedar files read, in order' },
    policies: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, origin: { type: 'string' } } } },
    lint: { type: 'array', items: FINDING, description: 'What `keyway policy lint` finds' },
  },
};
const TEST_SCHEMA = {
  type: 'object',
  required: ['policy', 'files', 'compared', 'skipped', 'differing', 'not_replayable'],
  properties: {
    policy: { type: 'string', description: 'The candidate’s hash' },
    files: { type: 'array', items: { type: 'string' } },
    compared: { type: 'integer', description: 'Recorded requests judged again' },
    skipped: { type: 'integer', description: 'Request lines that state no policy verdict (refused before the policy was asked)' },
    differing: {
      type: 'array',
      items: {
        ...REQUEST,
        properties: {
          ...REQUEST.properties,
          recorded: { type: 'string', enum: ['allow', 'deny'] },
          recorded_deciding: { type: 'array', items: { type: 'string' } },
          verdict: { type: 'string', enum: ['allow', 'deny', 'pass'] },
          stage: { type: ['string', 'null'], enum: ['grant', 'rules', 'cedar', null] },
          code: { type: ['string', 'null'] },
          deciding: { type: 'array', items: { type: 'string' } },
          reason: { type: 'string' },
        },
      },
    },
    not_replayable: { type: 'array', items: { ...REQUEST, properties: { ...REQUEST.properties, why: { type: 'string' } } } },
  },
};

export function policyRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/policy',
      doc: {
        operationId: 'policy',
        summary: 'The policy on disk (what a reload puts in effect): its hash, Cedar files and policy ids, and what `keyway policy lint` finds',
        tags: ['policy'],
        responses: { '200': jsonResponse('The policy in effect', POLICY_SCHEMA) },
      },
      handle: async () => {
        const { loaded, findings } = await lintHome(deps.oauth.config());
        return {
          status: 200,
          body: {
            hash: loaded?.hash ?? null,
            files: loaded?.files ?? [],
            policies: loaded?.policies.map((p) => ({ id: p.id, origin: p.origin })) ?? [],
            lint: findings,
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/api/policy/test',
      doc: {
        operationId: 'policyTest',
        summary:
          'Replay the audit log’s requests under a candidate policy (Cedar text in place of the Cedar files; none: the policy in effect): the verdicts that differ from those recorded',
        tags: ['policy'],
        requestBody: jsonBody(
          {
            type: 'object',
            properties: {
              policy: { type: 'string', description: 'Cedar policies in place of the Cedar files (the YAML rules stay); absent: the policy in effect' },
              since: { type: 'string', description: 'An ISO date or a duration back from now (24h, 7d); default 24h', examples: ['24h'] },
              agent: { type: 'string', description: 'Only this agent’s requests' },
            },
          },
          false,
        ),
        responses: {
          '200': jsonResponse('The requests whose verdict differs, and those that cannot be replayed', TEST_SCHEMA),
          '400': errorResponse('A since that does not parse, an unknown field, or a candidate that does not parse (its first error, with line and column)'),
        },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['policy', 'since', 'agent'], true);
        const text = optionalString(body, 'policy');
        if (text !== undefined && Buffer.byteLength(text) > MAX_CANDIDATE) throw badRequest(`policy: over ${MAX_CANDIDATE} bytes`);
        const agent = optionalString(body, 'agent');
        const since = asBadRequest(() => parseAuditTime(optionalString(body, 'since') ?? '24h', 'since'));
        const config = deps.oauth.config();
        const loaded = text === undefined ? await loadCurrentPolicy(config) : await asBadRequestAsync(() => loadPolicyText(config, text));
        // Without Cedar files the engine stays unloaded in the proxy's process: nothing but the YAML to read.
        const scopes = loaded.hasCedarFiles ? await scopesOf(loaded.policies) : [];
        const judged = { candidate: candidateOf(config, loaded, storedRouting(deps.services.store)), scopes };
        const report = await replayAgainstLog(
          judged,
          loggedRequests(config, deps.env, { ...(since === undefined ? {} : { since }), ...(agent === undefined ? {} : { agent }) }),
        );
        return { status: 200, body: testReportJson(loaded, report) };
      },
    },
  ];
}

function badRequest(message: string): AdminError {
  return new AdminError('bad_request', message);
}

function asBadRequest<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw err instanceof KeywayError ? badRequest(err.message) : err;
  }
}

async function asBadRequestAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw err instanceof KeywayError ? badRequest(err.message) : err;
  }
}
