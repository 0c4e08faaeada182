// The admin API's writes owe their audit line in the store write that makes the change
// (credentials/store/change-rider.ts): a line the audit writer could not write stays owed, and the
// next open writes it once (app/owed-change-lines.ts). A real file store and a real HTTP server
// running the router's dispatch; the audit target is the part made to fail.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeOwedChangeLines } from '../../src/app/owed-change-lines.ts';
import type { AuditEvent } from '../../src/audit/index.ts';
import { OWED_LINE_PREFIX, type OwedLineRecord } from '../../src/credentials/store/change-rider.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { dispatch, type Route, RouteTable } from '../../src/admin/router.ts';

describe('owed change lines', () => {
  let dir: string;
  let store: Store;
  let server: Server;
  let written: AuditEvent[];
  let auditFails: boolean;

  const route = (handle: Route['handle']): Route => ({
    method: 'POST',
    path: '/api/grants/{grant}/secret',
    doc: { summary: 's', operationId: 'grants.set_secret', tags: [], responses: {} },
    handle,
  });

  const serve = async (r: Route) => {
    const table = new RouteTable([r]);
    server = createServer((req, res) => {
      const found = table.match(req.method ?? 'GET', req.url ?? '/');
      if (!('found' in found)) {
        res.end();
        return;
      }
      void dispatch(found.found, req, res, req.url ?? '/', {
        audit: {
          write: async (event) => {
            if (auditFails) throw new Error('disk full');
            written.push(event);
          },
        },
        store,
        host: '127.0.0.1',
        port: 1,
        actor: 'token',
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-owed-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    written = [];
    auditFails = false;
  });
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a write whose line was written leaves nothing owed; one whose line failed owes it, written once at the next open', async () => {
    const url = await serve(
      route(async (ctx) => {
        await store.update((d) => d.set(`grant:${ctx.params['grant']}`, { secret: 'x' }));
        return { status: 200, body: {} };
      }),
    );
    expect((await fetch(`${url}/api/grants/gh/secret`, { method: 'POST' })).status).toBe(200);
    // The answer goes before the line is written: the router settles after it.
    await expect.poll(() => written.map((e) => e.action)).toEqual(['grants.set_secret']);
    await expect.poll(() => store.entries(OWED_LINE_PREFIX)).toEqual([]);

    auditFails = true;
    expect((await fetch(`${url}/api/grants/gh2/secret`, { method: 'POST' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const owed = store.entries<OwedLineRecord>(OWED_LINE_PREFIX);
    expect(owed.map(([, r]) => [r.line.action, r.line.grant, r.line.actor])).toEqual([['grants.set_secret', 'gh2', 'token']]);

    // This process made it and still runs: not the next open's to write (it may write it yet).
    const log: AuditEvent[] = [];
    expect(await writeOwedChangeLines({ write: async (e) => void log.push(e) }, store)).toBe(0);
    // Its process gone (another boot): written, once.
    await store.update((d) => {
      const [id, record] = owed[0]!;
      d.set(id, { ...record, owner: { ...record.owner, holder: { ...record.owner.holder, boot: 'another-boot' } } });
    });
    expect(await writeOwedChangeLines({ write: async (e) => void log.push(e) }, store)).toBe(1);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ action: 'grants.set_secret', grant: 'gh2', actor: 'token', method: 'POST', decision: 'admin' });
    expect(log[0]!.message).toMatch(/written at the next open/);
    expect(await writeOwedChangeLines({ write: async (e) => void log.push(e) }, store)).toBe(0);
    expect(store.entries(OWED_LINE_PREFIX)).toEqual([]);
  });

  it('a write that changed nothing, or was refused, owes nothing; a store write after the change ended carries nothing', async () => {
    let later: Promise<void> | undefined;
    const url = await serve(
      route(async (ctx) => {
        if (ctx.params['grant'] === 'refused') {
          await store.update((d) => {
            d.set('grant:refused', { secret: 'x' });
            throw new Error('refused inside the write');
          });
        }
        // A timer the handler starts keeps its context: its write comes after the change ended.
        later = new Promise((resolve) => setTimeout(() => void store.update((d) => d.set('grant:later', { n: 1 })).then(resolve), 50));
        return { status: 200, body: {} };
      }),
    );
    auditFails = true;
    expect((await fetch(`${url}/api/grants/nothing/secret`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${url}/api/grants/refused/secret`, { method: 'POST' })).status).toBe(500);
    await later;
    expect(store.get('grant:later')).toEqual({ n: 1 });
    expect(store.get('grant:refused')).toBeUndefined();
    expect(store.entries(OWED_LINE_PREFIX)).toEqual([]);
  });
});
