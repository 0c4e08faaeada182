// /api/openapi.json cannot drift from the routes: the document is built from the route table, and
// here every documented operation is called on a running keyway and must answer with one of the
// statuses it documents (never the router's own 404 or 405). Streamed answers (event streams) are
// cut once their head has arrived.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

interface Operation {
  operationId: string;
  responses: Record<string, unknown>;
  requestBody?: unknown;
  security?: unknown[];
}

describe('admin API: /api/openapi.json', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>> };

  beforeAll(async () => {
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    admin = adminClient(proxy);
    const res = await admin.call('GET', '/api/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body as typeof doc;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('is OpenAPI 3.1 with unique operation ids, and carries no secret', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining([
        'healthz',
        'readyz',
        'metrics',
        'status',
        'reload',
        'openapi',
        'grants.list',
        'grants.show',
        'grants.create',
        'grants.update',
        'grants.set_secret',
        'grants.refresh',
        'grants.revoke',
        'grants.delete',
        'grant_types.list',
        'agents.list',
        'agents.create',
        'agents.rotate_key',
        'agents.delete',
        'agents.lease',
        'agents.revoke_lease',
        'audit.query',
        'audit.stream',
        'oauth.connect',
        'oauth.callback',
        'oauth.device.start',
        'oauth.device.status',
        'session.create',
        'session.show',
        'session.delete',
        'overview',
        'spend',
      ]),
    );
    const text = JSON.stringify(doc);
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(admin.token);
  });

  it('needs the admin token', async () => {
    const res = await fetch(`${admin.base}/api/openapi.json`);
    expect(res.status).toBe(401);
  });

  it('every documented operation answers with a status it documents', async () => {
    const unknown: string[] = [];
    for (const [template, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        // A path parameter gets a name nothing has: the route must still be found (its own 404 is a
        // documented answer; the router's "no admin route" is not).
        const path = template.replace(/\{[a-z_]+\}/g, 'no-such-thing');
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 10_000);
        try {
          const res = await fetch(`${admin.base}${path}`, {
            method: method.toUpperCase(),
            headers: { authorization: `Bearer ${admin.token}`, ...(op.requestBody ? { 'content-type': 'application/json' } : {}) },
            ...(op.requestBody ? { body: '{}' } : {}),
            signal: controller.signal,
          });
          const text = (res.headers.get('content-type') ?? '').startsWith('text/event-stream') ? '' : await res.text();
          if (!(String(res.status) in op.responses)) unknown.push(`${method.toUpperCase()} ${template} answered ${res.status}: ${text.slice(0, 200)}`);
          if (res.status === 404) expect(text, `${method} ${template}`).not.toContain('no admin route');
          expect(res.status, `${method} ${template}`).not.toBe(405);
          expect(text).not.toContain(CANARY);
        } finally {
          clearTimeout(timer);
          controller.abort();
        }
      }
    }
    expect(unknown).toEqual([]);
  });

  it('a path the table does not have is 404, a known path with another method is 405 with Allow', async () => {
    const missing = await admin.call('GET', '/api/nothing-here');
    expect(missing.status).toBe(404);
    expect((missing.body as { error: { code: string } }).error.code).toBe('not_found');
    const wrongMethod = await admin.call('DELETE', '/api/status');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
  });
});
