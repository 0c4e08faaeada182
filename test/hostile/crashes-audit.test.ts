import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildProxy, writeChildHome, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

// "Logs every access" through a crash (issue 46). Before, keyway answered the agent and appended
// the audit line afterwards, in a batch: a SIGKILL lost the lines still in memory (148 of 2,500 in a
// flood), a request the upstream still held had no line at all, and a keyway restarted onto the
// audit lock a killed one left behind served for seconds with every line in memory. Now a request's
// first line is in the kernel before its credential leaves (stage audit-write-ahead): every request
// the upstream received with the credential has a line, whenever keyway is killed.

const TOKEN = `${CANARY}-crash-audit-token`;
const FLOOD = 2_500;
const CONCURRENCY = 32;

interface Seen {
  path: string;
  injected: boolean;
}

describe('a SIGKILL loses no audit line of a request whose credential left', () => {
  let upstream: Server;
  let port: number;
  const seen: Seen[] = [];
  const held = new Set<import('node:http').ServerResponse>();
  let home: string;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      seen.push({ path: req.url ?? '', injected: req.headers.authorization === `Bearer ${TOKEN}` });
      // /hold/…: the upstream acts on the request and has not answered yet when keyway dies.
      if (req.url?.startsWith('/hold/')) return void held.add(res);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    port = (upstream.address() as AddressInfo).port;
    // The default config: write-ahead is keyway's default.
    home = writeChildHome({
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
    });
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    const audit = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
    for (const text of [audit, ...outputs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
  });

  const start = () => startChildProxy({ home, env: cleanEnv({ API_TOKEN: TOKEN }) });
  /**
   * The paths of every whole line. A SIGKILL in the middle of a write may leave a torn last line (no
   * newline: the crash artifact the next open seals, see audit/file/torn-tail.ts); every line before
   * it must be whole.
   */
  const auditedPaths = () => {
    const lines = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8').split('\n');
    lines.pop(); // after the last newline: empty, or a torn line
    return new Set(lines.filter(Boolean).map((l) => (JSON.parse(l) as { path?: string }).path));
  };
  const through = (proxy: ChildProxy) =>
    new ProxyAgent({
      uri: `http://127.0.0.1:${proxy.port}`,
      requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') },
      connections: CONCURRENCY,
    });
  const kill = async (proxy: ChildProxy) => {
    const exited = once(proxy.child, 'exit');
    proxy.child.kill('SIGKILL');
    await exited;
    outputs.push(proxy.stdout(), proxy.stderr());
  };
  /** Every path the upstream received with the credential, and whether the log has a line for it. */
  const unlogged = (prefix: string) => {
    const logged = auditedPaths();
    return seen.filter((s) => s.injected && s.path.startsWith(prefix) && !logged.has(s.path)).map((s) => s.path);
  };

  it('three requests the upstream holds when keyway is killed each have their line', async () => {
    const proxy = await start();
    const dispatcher = through(proxy);
    const pending = [1, 2, 3].map((i) =>
      request(`https://api.example.test:${port}/hold/${i}`, { dispatcher }).then(
        () => undefined,
        () => undefined,
      ),
    );
    await waitFor(() => (seen.filter((s) => s.path.startsWith('/hold/') && s.injected).length === 3 ? true : undefined), 'the three requests upstream');
    // No wait for the head file: keyway seals it when it opens the log (issue 60), so a kill at any
    // moment leaves a log verify vouches for, up to the lines past the head it names.
    await kill(proxy);
    await Promise.all(pending);
    await dispatcher.close().catch(() => undefined);
    expect(unlogged('/hold/')).toEqual([]);
    const lines = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => String(l['path']).startsWith('/hold/'));
    // Their write-ahead lines: the credential left, and the outcome never came.
    expect(lines.map((l) => [l['phase'], l['decision'], l['grant'], l['status']])).toEqual([
      ['sent', 'inject', 'api', null],
      ['sent', 'inject', 'api', null],
      ['sent', 'inject', 'api', null],
    ]);
    // verify takes the pairs: the chain is intact, and it names the requests left without an outcome.
    const verify = await runCli(['audit', 'verify', '--home', home], cleanEnv());
    outputs.push(verify.stdout, verify.stderr);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/[1-9]\d* request\(s\) recorded as sent with no outcome line/);
  });

  /** FLOOD requests, CONCURRENCY at a time, until all are sent or keyway is gone. */
  async function flood(proxy: ChildProxy, prefix: string): Promise<void> {
    const dispatcher = through(proxy);
    let next = 0;
    const worker = async () => {
      while (next < FLOOD) {
        const i = next++;
        try {
          const res = await request(`https://api.example.test:${port}${prefix}${i}`, { dispatcher });
          await res.body.dump();
        } catch {
          return; // keyway was killed
        }
      }
    };
    const workers = Array.from({ length: CONCURRENCY }, worker);
    // Killed in the thick of it: once the upstream has most of the flood.
    await waitFor(() => (seen.filter((s) => s.path.startsWith(prefix)).length >= FLOOD * 0.8 ? true : undefined), 'most of the flood upstream', 60_000);
    await kill(proxy);
    await Promise.all(workers);
    await dispatcher.close().catch(() => undefined);
  }

  it('a flood ended by SIGKILL loses no line; nor does the next, on a restart onto the lock the killed one left', async () => {
    await flood(await start(), '/flood-a/');
    expect(seen.filter((s) => s.path.startsWith('/flood-a/') && s.injected).length).toBeGreaterThan(FLOOD * 0.5);
    expect(unlogged('/flood-a/')).toEqual([]);
    // A killed writer's lock, as fresh as if it died mid-append: the restarted keyway must not serve
    // with its lines held in memory meanwhile.
    mkdirSync(join(home, 'logs', 'audit.jsonl.lock'), { recursive: true });
    await flood(await start(), '/flood-b/');
    expect(seen.filter((s) => s.path.startsWith('/flood-b/') && s.injected).length).toBeGreaterThan(FLOOD * 0.5);
    expect(unlogged('/flood-b/')).toEqual([]);
    const verify = await runCli(['audit', 'verify', '--home', home], cleanEnv());
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 180_000);
});
