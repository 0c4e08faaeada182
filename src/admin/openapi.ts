// /api/openapi.json, built from the route table itself (router.ts): every route that answers is in
// the document, with the responses its handler gives.

import type { Route } from './router.ts';
import { keywayVersion } from '../version.ts';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: ['string', 'null'] } },
    },
  },
};

/** A response described as JSON with the given schema. */
export function jsonResponse(description: string, schema: unknown = { type: 'object' }): unknown {
  return { description, content: { 'application/json': { schema } } };
}

/** The shared error response. */
export function errorResponse(description: string): unknown {
  return { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
}

/** A schema in the document's components, by name (its grant schemas: api/grant-schemas.ts). */
export function schemaRef(name: string): unknown {
  return { $ref: `#/components/schemas/${name}` };
}

/** A JSON request body with the given schema. */
export function jsonBody(schema: unknown, required = true): unknown {
  return { required, content: { 'application/json': { schema } } };
}

export async function openApiDocument(routes: readonly Route[]): Promise<Record<string, unknown>> {
  // Derived from zod, loaded here on first use: the proxy process runs without zod until then.
  const { grantSchemas } = await import('./api/grant-schemas.ts');
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters = [...route.path.matchAll(/\{([a-z_]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const responses: Record<string, unknown> = { ...route.doc.responses };
    if (!route.open) {
      responses['401'] ??= errorResponse('No admin token, a wrong one, or no session');
    }
    responses['403'] ??= errorResponse(
      route.open
        ? 'Host is not one of the listener’s own names (DNS rebinding guard)'
        : 'Host is not one of the listener’s own names (DNS rebinding guard), or a dashboard session’s call without its X-Keyway-CSRF header',
    );
    const operation: Record<string, unknown> = {
      operationId: route.doc.operationId,
      summary: route.doc.summary,
      ...(route.doc.description ? { description: route.doc.description } : {}),
      tags: route.doc.tags,
      ...(parameters.length > 0 || route.doc.parameters ? { parameters: [...parameters, ...(route.doc.parameters ?? [])] } : {}),
      ...(route.doc.requestBody ? { requestBody: route.doc.requestBody } : {}),
      responses,
      ...(route.open ? { security: [] } : {}),
    };
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'keyway admin API',
      version: keywayVersion(),
      description:
        'Manage the grants, agents and leases of a running keyway, read its audit log, and operate it. No response carries secret material; every write is audited (decision admin).',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { apiKey: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The admin token from data/admin.token' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The admin token from data/admin.token' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'keyway_session',
          description: 'The dashboard session (POST /api/session); every call also needs its CSRF token in X-Keyway-CSRF',
        },
      },
      schemas: { Error: ERROR_SCHEMA, ...grantSchemas() },
    },
  };
}
