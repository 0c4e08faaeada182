// The admin API's writes owe their audit line in the store write that makes the change
// (credentials/store/change-rider.ts): a line the audit writer could not write stays owed, and the
// next open writes it once (app/owed-change-lines.ts). A real file store and a real HTTP server
// running the router's dispatch; the audit target is the part made to fail. The record names the id
// its line is written under, and each next open's own before it writes: a line already in the log
// under one of them is not written again (issue 86: a writer killed after its line, before settling).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeOwedChangeLines } from '../../src/app/owed-change-lines.ts';
import type { AuditEvent } from '../../src/audit/index.ts';
import type { LineFinder } from '../../src/audit/read/find-ids.ts';
import { OWED_LINE_PREFIX, type OwedLineRecord } from '../../src/credentials/store/change-rider.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { dispatch, type Route, RouteTable } from '../../src/admin/router.ts';

describe('owed change lines', () => {
  let dir: string;
  let store: Store;
  let server: Server;
  let written: AuditEvent[];
  /** The audit writer refuses the line (true), or writes it and then throws (a line that landed, its writer lost before settling). */
  let auditFails: boolean | 'after-writing';
  /** The owed records in the store at each line's write. */
  let owedAtWrite: OwedLineRecord[][];

  /** An audit log in memory, with the lookup the next open makes in it (the ids it was asked for kept). */
  const memoryLog = (lines: AuditEvent[] = []) => {
    const asked: string[][] = [];
    const find: LineFinder = async (ids) => {
      asked.push([...ids]);
      return lines.some((l) => ids.includes(l.id));
    };
    return { lines, asked, find, write: async (e: AuditEvent) => void lines.push(e) };
  };
  /** Marks a record's process (and its claim's) as gone: another boot. */
  const goneAway = async (id: string) =>
    store.update((d) => {
      const record = d.get<OwedLineRecord>(id)!;
      const away = (o: OwedLineRecord['owner']) => ({ ...o, holder: { ...o.holder, boot: 'another-boot' } });
      d.set(id, { ...record, owner: away(record.owner), ...(record.claim === undefined ? {} : { claim: away(record.claim) }) });
    });
  /** A change through the router whose line the audit refuses: it stays owed. Resolves its record. */
  const owedChange = async (url: string, grant: string): Promise<[string, OwedLineRecord]> => {
    auditFails = true;
    expect((await fetch(`${url}/api/grants/${grant}/secret`, { method: 'POST' })).status).toBe(200);
    await expect.poll(() => store.entries<OwedLineRecord>(OWED_LINE_PREFIX).filter(([, r]) => r.line.grant === grant)).toHaveLength(1);
    auditFails = false;
    return store.entries<OwedLineRecord>(OWED_LINE_PREFIX).find(([, r]) => r.line.grant === grant)!;
  };
  const route = (handle: Route['handle']): Route => ({
    method: 'POST',
    path: '/api/grants/{grant}/secret',
    doc: { summary: 's', operationId: 'grants.set_secret', tags: [], responses: {} },
    handle,
  });

  const writeSecret = (): Route =>
    route(async (ctx) => {
      await store.update((d) => d.set(`grant:${ctx.params['grant']}`, { secret: 'x' }));
      return { status: 200, body: {} };
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
            owedAtWrite.push(store.entries<OwedLineRecord>(OWED_LINE_PREFIX).map(([, r]) => r));
            if (auditFails === true) throw new Error('disk full');
            written.push(event);
            if (auditFails === 'after-writing') throw new Error('lost before settling');
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
    owedAtWrite = [];
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
    const log = memoryLog();
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(0);
    // Its process gone (another boot): looked for under the id the router meant to write it under, not found, written once.
    await goneAway(owed[0]![0]);
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(1);
    expect(log.asked).toEqual([owed[0]![1].ids]);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ action: 'grants.set_secret', grant: 'gh2', actor: 'token', method: 'POST', decision: 'admin' });
    expect(log.lines[0]!.message).toMatch(/written at the next open/);
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(0);
    expect(log.lines).toHaveLength(1);
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

  it("the router's line carries the id its record names from the start; a record whose line is in the log goes with nothing written", async () => {
    const url = await serve(writeSecret());
    expect((await fetch(`${url}/api/grants/gh/secret`, { method: 'POST' })).status).toBe(200);
    await expect.poll(() => written).toHaveLength(1);
    // The record was in the store as the line was written, naming the line's id.
    expect(owedAtWrite[0]!.map((r) => r.ids)).toEqual([[written[0]!.id]]);
    await expect.poll(() => store.entries(OWED_LINE_PREFIX)).toEqual([]);

    // As a keyway killed after its line and before settling leaves it: the line in the log, the record still there.
    auditFails = 'after-writing';
    expect((await fetch(`${url}/api/grants/gh2/secret`, { method: 'POST' })).status).toBe(200);
    await expect.poll(() => store.entries(OWED_LINE_PREFIX)).toHaveLength(1);
    const [id, record] = store.entries<OwedLineRecord>(OWED_LINE_PREFIX)[0]!;
    expect(written.map((e) => e.id)).toContain(record.ids![0]);
    await goneAway(id);
    const log = memoryLog(written);
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(1);
    expect(log.asked).toEqual([record.ids]);
    expect(written.filter((e) => e.grant === 'gh2')).toHaveLength(1);
    expect(store.entries(OWED_LINE_PREFIX)).toEqual([]);
  });

  it('a next open records the id it writes under before writing: killed after its line, the one after finds it; killed before, the one after writes it once', async () => {
    const url = await serve(writeSecret());
    const [id, record] = await owedChange(url, 'gh');
    await goneAway(id);

    // The first next open: the line's id recorded in the store before its write, then killed (here: its write throws, as after a kill its line is there).
    const log = memoryLog();
    const seenAtWrite: Array<string[] | undefined> = [];
    const killedAfterLine = {
      write: async (e: AuditEvent) => {
        seenAtWrite.push(store.get<OwedLineRecord>(id)?.ids);
        await log.write(e);
        throw new Error('killed after its line');
      },
    };
    await expect(writeOwedChangeLines(killedAfterLine, store, log.find)).rejects.toThrow('killed after its line');
    expect(log.lines).toHaveLength(1);
    expect(seenAtWrite).toEqual([[...record.ids!, log.lines[0]!.id]]);
    // Its claim stays (this process runs); once gone, the next open looks both ids up, finds the line, writes nothing.
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(0);
    await goneAway(id);
    expect(await writeOwedChangeLines(log, store, log.find)).toBe(1);
    expect(log.asked.at(-1)).toEqual([...record.ids!, log.lines[0]!.id]);
    expect(log.lines).toHaveLength(1);
    expect(store.entries(OWED_LINE_PREFIX)).toEqual([]);

    // Killed after its claim and before its line: the next open finds none of the ids and writes it, once.
    const [id2, record2] = await owedChange(url, 'gh2');
    await goneAway(id2);
    const log2 = memoryLog();
    const killedBeforeLine = {
      write: async () => {
        throw new Error('killed before its line');
      },
    };
    await expect(writeOwedChangeLines(killedBeforeLine, store, log2.find)).rejects.toThrow('killed before its line');
    expect(store.get<OwedLineRecord>(id2)?.ids).toHaveLength(2);
    await goneAway(id2);
    expect(await writeOwedChangeLines(log2, store, log2.find)).toBe(1);
    expect(log2.lines).toHaveLength(1);
    expect(log2.lines[0]).toMatchObject({ action: 'grants.set_secret', grant: 'gh2' });
    // Written under a third id, recorded before it was written; neither earlier one.
    expect(record2.ids).toHaveLength(1);
    expect(log2.asked.at(-1)).toHaveLength(2);
    expect(log2.asked.at(-1)).not.toContain(log2.lines[0]!.id);
    expect(store.entries(OWED_LINE_PREFIX)).toEqual([]);
  });

  it('a record an older keyway wrote (no ids) is written without a look; a log that cannot be read back keeps the record', async () => {
    const url = await serve(writeSecret());
    const [id, record] = await owedChange(url, 'gh');
    const { ids: _ids, ...older } = record;
    await store.update((d) => d.set(id, older));
    await goneAway(id);
    const unreadable = memoryLog();
    const failing: LineFinder = async () => {
      throw new Error('the audit log cannot be read');
    };
    // No ids: nothing to look up, written at once.
    expect(await writeOwedChangeLines(unreadable, store, failing)).toBe(1);
    expect(unreadable.lines).toHaveLength(1);

    const [id2] = await owedChange(url, 'gh2');
    await goneAway(id2);
    await expect(writeOwedChangeLines(unreadable, store, failing)).rejects.toThrow('cannot be read');
    expect(unreadable.lines).toHaveLength(1);
    expect(store.get(id2)).toBeDefined();
  });
});
