import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { stringify } from 'yaml';
import { LINE_BOUND, ROOM_FLOOR } from '../../src/audit/file/room.ts';
import { fileBackInPlace, folderInPlaceOf } from '../helpers/exchange.ts';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, runCli, TEST_HOSTS } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// proxy.workers with the audit file: the primary is the file's one writer, and each worker hands it
// its lines (src/app/workers/shared-audit.ts). Shown here through `keyway start` with two workers:
// a request's write-ahead line is in the file before the upstream sees the request, whichever
// worker took it; the lines of both workers make one chain `keyway audit verify` accepts; and when
// the primary cannot write, the workers refuse what they would inject (503 audit_unavailable),
// send nothing upstream, and serve again once the file is back.

const API_TOKEN = `canary-api-${randomBytes(8).toString('hex')}`;
const BOT_KEY = `bot-${randomBytes(12).toString('hex')}`;

interface AuditLine {
  id: string;
  path: string | null;
  phase?: string;
  status: number | null;
  code: string | null;
}

/** The file's whole lines: one being appended while this reads may be there in part, after the last line feed. */
function auditLines(home: string): AuditLine[] {
  const whole = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8').split('\n');
  whole.pop();
  return whole.map((line) => JSON.parse(line) as AuditLine);
}

describe('proxy.workers: the primary writes every worker’s audit lines', () => {
  let upstream: TestUpstream;
  let child: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;
  /** Paths the upstream answered without finding their write-ahead line in the file first. */
  const unwritten: string[] = [];

  beforeAll(async () => {
    home = writeChildHome({});
    // The upstream looks in the file for the request's write-ahead line before it answers.
    upstream = await startUpstream({
      handler: (req, res) => {
        const path = req.url ?? '';
        if (!path.startsWith('/wa/')) return false;
        let written: boolean;
        try {
          written = auditLines(home).some((line) => line.path === path && line.phase === 'sent');
        } catch (err) {
          // Answered either way: a handler that throws would leave the request hanging.
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`the audit file could not be read: ${(err as Error).message}`);
          return true;
        }
        if (!written) unwritten.push(path);
        res.writeHead(written ? 200 : 500, { 'content-type': 'text/plain' }).end(written ? 'written' : 'no write-ahead line');
        return true;
      },
    });
    const proxy = {
      upstream_ca: [TLS_FIXTURES.caPath],
      allow_networks: ['127.0.0.0/8'],
      hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
      workers: 2,
    };
    const config = {
      proxy,
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      agents: { free: { key: 'env:BOT_KEY' } },
    };
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY });
    child = await startChildProxy({ cli: SRC_CLI, home, env });
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });

  afterAll(async () => {
    if (child !== undefined && child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    if (child !== undefined) {
      expect(child.stdout() + child.stderr(), "a secret in keyway's output").not.toContain(API_TOKEN);
      expect(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'), 'a secret in the audit log').not.toContain(API_TOKEN);
    }
    await upstream?.close();
  });

  /** One request on a connection of its own (a new CONNECT), so that the kernel picks a worker for each. */
  async function fresh(path: string): Promise<{ status: number; body: string }> {
    const dispatcher = new ProxyAgent({ uri: `http://free:${BOT_KEY}@127.0.0.1:${child.port}`, requestTls: { ca: [ca] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
      return { status: res.statusCode, body: await res.body.text() };
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  }

  async function workerRequests(): Promise<number[]> {
    const out = await runCli(['status', '--json', '--home', home], env);
    expect(out.code, out.stderr).toBe(0);
    return (JSON.parse(out.stdout) as { workers: { requests: number | null }[] }).workers.map((w) => w.requests ?? 0);
  }

  it('a write-ahead line is in the file before the upstream sees its request, from either worker; the lines make one chain', async () => {
    const paths = Array.from({ length: 40 }, (_, i) => `/wa/${i}`);
    // In waves of 8 at once: both workers busy together, their lines in one file.
    for (let i = 0; i < paths.length; i += 8) {
      const answers = await Promise.all(paths.slice(i, i + 8).map((p) => fresh(p)));
      for (const a of answers) expect(a).toEqual({ status: 200, body: 'written' });
    }
    expect(unwritten).toEqual([]);
    // Both workers served some of them (the kernel spreads new connections over SO_REUSEPORT sockets).
    const perWorker = await workerRequests();
    expect(perWorker).toHaveLength(2);
    for (const n of perWorker) expect(n).toBeGreaterThan(0);
    // Each request: its write-ahead line, then its outcome, with the same id.
    const lines = auditLines(home).filter((l) => l.path?.startsWith('/wa/'));
    for (const path of paths) {
      const mine = lines.filter((l) => l.path === path);
      expect(mine.map((l) => [l.phase ?? 'outcome', l.status])).toEqual([
        ['sent', null],
        ['outcome', 200],
      ]);
      expect(mine[0]!.id).toBe(mine[1]!.id);
    }
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('when the primary cannot write, each worker refuses with 503 audit_unavailable and sends nothing; both serve again once the file is back', async () => {
    expect((await fresh('/echo')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const before = upstream.seen.length;
    const auditPath = join(home, 'logs', 'audit.jsonl');
    // A folder where the file was, and back, each in one step (test/helpers/exchange.ts).
    folderInPlaceOf(auditPath);
    try {
      // Enough fresh connections that both workers take some (each is refused on its own).
      const refused = await Promise.all(Array.from({ length: 8 }, () => fresh('/echo')));
      for (const r of refused) {
        expect(r.status).toBe(503);
        expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'audit_unavailable' } });
        expect(r.body).not.toContain(API_TOKEN);
      }
      expect(upstream.seen.length).toBe(before);
    } finally {
      fileBackInPlace(auditPath);
    }
    // The primary's writer probes every 100 ms, and tells the workers when it is healthy again.
    const deadline = Date.now() + 5_000;
    let back: { status: number }[] = [];
    while (Date.now() < deadline) {
      back = await Promise.all(Array.from({ length: 4 }, () => fresh('/echo')));
      if (back.every((r) => r.status === 200)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(back.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

// The room account (src/audit/file/room.ts) promises each injected request in flight room for its
// line (LINE_BOUND) and keeps ROOM_FLOOR free. With two workers each counting only its own, the pair
// admitted twice what the disk could promise; now every worker's requests in flight are counted in
// the primary's one account. A real small disk: logs/ on a tmpfs in keyway's own mount namespace
// (unshare, as test/integration/audit-retention-disk.test.ts), and an upstream that holds every
// request open, so that the requests admitted stay in flight.
describe('proxy.workers on a small disk: one room account for every worker', () => {
  let upstream: TestUpstream | undefined;
  let child: ChildProxy | undefined;
  const held: (() => void)[] = [];

  afterAll(async () => {
    for (const release of held.splice(0)) release();
    if (child !== undefined && child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    await upstream?.close();
  });

  it('admits no more requests in flight across both workers than the disk has room for, and admits again once they end', async () => {
    upstream = await startUpstream({
      handler: (req, res) => {
        if (!(req.url ?? '').startsWith('/hold/')) return false;
        held.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('released'));
        return true;
      },
    });
    const home = writeChildHome({});
    const logs = join(home, 'logs');
    mkdirSync(logs, { recursive: true });
    const config = {
      proxy: {
        upstream_ca: [TLS_FIXTURES.caPath],
        allow_networks: ['127.0.0.0/8'],
        hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
        workers: 2,
      },
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      agents: { free: { key: 'env:BOT_KEY' } },
    };
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY });
    child = await startChildProxy({
      cli: SRC_CLI,
      home,
      env,
      wrap: ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', logs],
    });
    const ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
    const proxyPort = child.port;
    const send = async (path: string) => {
      const dispatcher = new ProxyAgent({ uri: `http://free:${BOT_KEY}@127.0.0.1:${proxyPort}`, requestTls: { ca: [ca] } });
      try {
        const res = await request(`https://api.example.test:${upstream!.port}${path}`, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
        return { status: res.statusCode, body: await res.body.text() };
      } finally {
        await dispatcher.close().catch(() => undefined);
      }
    };
    // How many requests one account admits on this disk: each promised LINE_BOUND, with ROOM_FLOOR
    // and one more request's bound left over (spareRoom), less what the log holds already.
    const disk = await statfs(`/proc/${child.child.pid}/root${logs}`);
    const free = disk.bavail * disk.bsize;
    const oneAccount = Math.floor((free - ROOM_FLOOR - LINE_BOUND) / LINE_BOUND) + 1;
    expect(oneAccount).toBeGreaterThan(4);
    expect(oneAccount).toBeLessThan(40);

    // One at a time, each on a connection of its own (either worker may take it), with a pause for
    // the primary's word on its room to reach both workers. Bounded: twice what one account admits.
    const inFlight: Promise<{ status: number; body: string }>[] = [];
    let admitted = 0;
    let refused = 0;
    for (let i = 0; i < 2 * oneAccount + 4 && refused < 3; i++) {
      const before = held.length;
      const answer = send(`/hold/${i}`);
      const outcome = await Promise.race([
        answer.then((r) => r),
        (async () => {
          for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 10)))
            if (held.length > before) return 'held' as const;
          return 'neither' as const;
        })(),
      ]);
      if (outcome === 'held') {
        admitted += 1;
        inFlight.push(answer);
      } else if (outcome !== 'neither') {
        expect(outcome.status).toBe(503);
        expect(JSON.parse(outcome.body)).toMatchObject({ error: { code: 'audit_unavailable' } });
        refused += 1;
      } else throw new Error(`request ${i} was neither held upstream nor answered`);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(refused).toBe(3);
    // The lines queued meanwhile take a little room too: at most one account's worth, never two.
    expect(admitted).toBeLessThanOrEqual(oneAccount);
    expect(admitted).toBeGreaterThanOrEqual(oneAccount - 3);
    expect(upstream.seen.filter((s) => s.url.startsWith('/hold/'))).toHaveLength(admitted);

    // Every held request ends well, and the room they were promised comes back.
    for (const release of held.splice(0)) release();
    for (const answer of await Promise.all(inFlight)) expect(answer).toEqual({ status: 200, body: 'released' });
    const deadline = Date.now() + 5_000;
    let again = { status: 0, body: '' };
    while (Date.now() < deadline) {
      again = await send('/echo');
      if (again.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(again.status).toBe(200);
  });
});
