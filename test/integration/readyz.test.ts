// /readyz on the admin listener: open like /healthz (no token), behind the same Host check, 200 only
// while the CA is loaded, the store reads and the audit log is writable; 503 with the reason
// otherwise, and 200 again on its own once the fault clears. /healthz stays 200 through a store
// fault: the process is alive and serving from its last good copy. A store that reads but cannot be
// written (model spend flushes failing) is not `store: ok` either.
import { mkdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withStoreLock } from '../../src/credentials/store/lock.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { slack } from '../helpers/load.ts';

interface Answer {
  status: number;
  body: { ready?: boolean; reason?: string; checks?: Record<string, string>; error?: { code: string } };
  text: string;
}

describe('/readyz', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let adminPort: number;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-github` }] });
    adminPort = proxy.running.adminAddress!.port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function probe(path = '/readyz', headers: Record<string, string> = {}): Promise<Answer> {
    const res = await request(`http://127.0.0.1:${adminPort}${path}`, { headers, signal: AbortSignal.timeout(slack(5_000)) });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) as Answer['body'], text };
  }

  /** Polls /readyz (every 25 ms, at most 3 s) until it answers `status`. */
  async function readyzBecomes(status: number): Promise<Answer> {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const answer = await probe();
      if (answer.status === status || Date.now() > deadline) return answer;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('answers 200 with every check ok, without the admin token', async () => {
    const answer = await probe();
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ready: true, checks: { ca: 'ok', store: 'ok', audit: 'ok' } });
  });

  it('refuses a foreign Host, like every admin route', async () => {
    const answer = await probe('/readyz', { host: `rebind.example:${adminPort}` });
    expect(answer.status).toBe(403);
    expect(answer.body.error?.code).toBe('host_not_allowed');
  });

  it('goes 503 naming the audit log while it cannot be written, and back to 200 after', async () => {
    const path = proxy.auditPath;
    renameSync(path, `${path}.aside`);
    mkdirSync(path); // a folder where the file was: appends fail (as in audit-faults.test.ts)
    try {
      const down = await readyzBecomes(503);
      expect(down.status).toBe(503);
      expect(down.body.ready).toBe(false);
      expect(down.body.reason).toMatch(/^audit: the audit log cannot be written/);
      expect(down.body.checks).toMatchObject({ ca: 'ok', store: 'ok' });
      // And the proxy refuses to inject meanwhile: readiness says what traffic would meet.
      const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
      try {
        const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: agent });
        await res.body.text();
        expect(res.statusCode).toBe(503);
      } finally {
        await agent.close();
      }
    } finally {
      rmdirSync(path);
      renameSync(`${path}.aside`, path);
    }
    const up = await readyzBecomes(200);
    expect(up.status).toBe(200);
    expect(up.body.ready).toBe(true);
  });

  it('goes 503 naming the store while its file cannot be read, and back to 200 once it reads again; /healthz stays 200', async () => {
    const storePath = proxy.running.services.paths.store;
    const good = readFileSync(storePath);
    writeFileSync(storePath, '{"not": "a keyway store"}\n');
    try {
      const down = await readyzBecomes(503);
      expect(down.status).toBe(503);
      expect(down.body.reason).toMatch(/^store: the store file cannot be read \(store_corrupt\)/);
      expect(down.body.checks).toMatchObject({ ca: 'ok', audit: 'ok' });
      expect(down.text).not.toContain(storePath); // no file-system detail in the reason
      expect((await probe('/healthz')).status).toBe(200);
    } finally {
      writeFileSync(storePath, good);
    }
    const up = await readyzBecomes(200);
    expect(up.status).toBe(200);
  });
});

describe('/readyz while model spend cannot be written to the store', () => {
  const KEY = `${CANARY}-readyz-model-key`;
  let standin: StandinServer;
  let proxy: TestProxy;

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY] })] });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1' } },
        grants: { anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } } },
      },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await standin?.close();
  });

  async function readyz(): Promise<Answer> {
    const res = await request(`http://127.0.0.1:${proxy.running.adminAddress!.port}/readyz`, { signal: AbortSignal.timeout(slack(5_000)) });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) as Answer['body'], text };
  }

  it("goes 503 naming the store while spend flushes fail (its lock can't be taken), and back to 200 once they work", async () => {
    const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    const lock = `${proxy.running.services.paths.store}.lock`;
    // The store's lock, held for real by this (live) process as another writer would hold it: every
    // store write of keyway's waits for it and fails (store_locked); reads go on. (A file put where
    // the lock goes was taken over as a stale lock on a busy machine, and the writes went through.)
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding!: () => void;
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const holder = withStoreLock(proxy.running.services.paths.store, async () => {
      holding();
      await released;
    });
    try {
      expect((await readyz()).body.checks).toMatchObject({ store: 'ok' });
      await held;
      const res = await request(`https://api.anthropic.com:${standin.port}/v1/messages`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      // The flush waits for the lock (about 7 s) before it fails: a hang bound, not a timing (a busy
      // machine stretches the lock's retries and the flush interval alike).
      let down = await readyz();
      for (const deadline = Date.now() + 90_000; down.status !== 503 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        down = await readyz();
      }
      expect(down.status).toBe(503);
      expect(down.body.reason).toMatch(/^store: the store cannot be written \(store_locked\): model spend waits/);
      expect(down.body.checks).toMatchObject({ ca: 'ok', audit: 'ok' });
      expect(down.text).not.toContain(lock);
    } finally {
      release();
      await holder;
      await agent.close();
    }
    let up = await readyz();
    for (const deadline = Date.now() + 60_000; up.status !== 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      up = await readyz();
    }
    expect(up.body).toEqual({ ready: true, checks: { ca: 'ok', store: 'ok', audit: 'ok' } });
  });
});
