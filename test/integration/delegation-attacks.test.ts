// Issue 89, item 6: attacks on delegation as it stands, through the real CLI and the real proxy (curl
// to a real loopback upstream). A child asking for what its parent lacks; minting past the depth; a
// child's key after its parent's key rotates (and a delegation racing that rotation); a child
// "rewriting its own rules" through the admin API or a reload; records edited by hand in the store
// to widen a child (grants, a parent link to another agent, depth, a chain too long, a loop); a
// child's key replayed after it was removed. Each refusal is checked where the guard sits: the
// upstream never sees the request, the canary never leaks.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRecordId, type StoredAgent } from '../../src/credentials/agent-record.ts';
import { hashAgentKey } from '../../src/credentials/agents.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const GITHUB = 'api.example.test';
const SLACK = 'tunnel.example.test';
const SLACK_SECRET = 'xoxb-kw-canary-never-handed-on';
const LEAD_KEY = 'lead-key-0123456789abcdef';

interface Minted {
  proxy_url: string;
  expires_at: string;
}

describe('attacks on delegation', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY, OTHER_KEY: 'other-key-0123456789abcdef' },
      config: {
        agents: {
          // The parent: two grants, GET only on github.
          lead: { key: 'env:LEAD_KEY', grants: ['github'], rules: [{ grant: 'github', methods: ['GET'] }] },
          // A parent whose POSTs wait for a person's yes: its children's do too.
          gated: {
            key: 'env:OTHER_KEY',
            grants: ['github'],
            rules: [
              { grant: 'github', methods: ['GET'] },
              { grant: 'github', methods: ['POST'], approve: 'human', approval: { wait: 0 } },
            ],
          },
          // Another agent with every grant: a child must never become its.
          other: { key: 'env:OTHER_KEY' },
        },
      },
      grants: [
        { id: 'github', type: 'bearer', domains: [GITHUB], secret: CANARY },
        { id: 'slack', type: 'bearer', domains: [SLACK], secret: SLACK_SECRET },
      ],
    });
  });
  afterAll(async () => {
    for (const text of [...proxy.auditLines().map((l) => JSON.stringify(l)), ...proxy.logs]) {
      expect(findLeak(text, CANARY), 'the github secret in an output').toBeUndefined();
      expect(text).not.toContain(SLACK_SECRET);
    }
    await proxy?.stop();
    await upstream?.close();
  });

  const cli = (...args: string[]) => proxy.cli(args);
  const delegate = async (...args: string[]): Promise<Minted> => {
    const result = await cli('agents', 'delegate', ...args, '--json');
    expect(result.stderr, args.join(' ')).toBe('');
    return JSON.parse(result.stdout) as Minted;
  };
  const curl = async (proxyUrl: string, host = GITHUB, method = 'GET'): Promise<{ status: number; body: string }> => {
    const result = await runProcess(
      'curl',
      ['-sS', '-X', method, '-w', '\n%{http_code}', '--proxy-header', 'Connection: close', `https://${host}:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const lines = result.stdout.split('\n');
    const status = Number(lines.at(-1));
    const connect = /response (\d{3})/.exec(result.stderr);
    return { status: status > 0 ? status : Number(connect?.[1] ?? 0), body: lines.slice(0, -1).join('\n') };
  };
  /** Served once the proxy has read the store (it watches it). */
  const served = (proxyUrl: string) => waitForAsync(async () => ((await curl(proxyUrl)).status === 200 ? true : undefined), 'the child to be served', 15_000);
  /** A key that was served, refused 407 once the store change is read. */
  const cut = (proxyUrl: string, what: string) => waitForAsync(async () => ((await curl(proxyUrl)).status === 407 ? true : undefined), what, 15_000);
  const proxyUrl = (id: string, key: string) => `http://${id}:${key}@127.0.0.1:${proxy.port}`;
  const names = async (): Promise<string[]> => (JSON.parse((await cli('agents', 'list', '--json')).stdout) as Array<{ id: string }>).map((a) => a.id);

  let edits = 0;
  /**
   * Edits the store by hand, as someone with the master key and a text editor would: no checks.
   * With the edit, a fresh root agent (a marker): once the proxy serves it, it has read the edit.
   */
  const editStore = async (edit: (set: (record: StoredAgent) => void, get: (id: string) => StoredAgent | undefined) => void) => {
    const marker = `marker-${++edits}`;
    const { key } = await loadMasterKey({ dataDir: join(proxy.home, 'data'), env: { KEYWAY_MASTER_KEY: proxy.env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(proxy.home, 'data', 'store.json'), key);
    try {
      await store.update((draft) => {
        edit(
          (record) => draft.set(agentRecordId(record.id), record),
          (id) => draft.get<StoredAgent>(agentRecordId(id)),
        );
        draft.set(agentRecordId(marker), record(marker, `${marker}-key-0123456789`, undefined, { grants: ['github'] }));
      });
    } finally {
      store.close();
    }
    await served(proxyUrl(marker, `${marker}-key-0123456789`));
  };
  const record = (id: string, key: string, parent?: { id: string; key: string }, more: Partial<StoredAgent> = {}): StoredAgent => ({
    id,
    key_sha256: hashAgentKey(key).toString('hex'),
    created_at: new Date().toISOString(),
    ...(parent === undefined
      ? {}
      : { parent: parent.id, parent_key_sha256: hashAgentKey(parent.key).toString('hex'), expires_at: new Date(Date.now() + 3_600_000).toISOString() }),
    ...more,
  });

  it('refuses a child the grant, the host and the method its parent lacks, at minting and at each request', async () => {
    const refused = await cli('agents', 'delegate', 'lead', '--name', 'wide', '--grants', 'github,slack');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('does not hold grant "slack"');
    const child = await delegate('lead', '--name', 'worker');
    await served(child.proxy_url);
    const seen = upstream.seen.length;
    const host = await curl(child.proxy_url, SLACK);
    expect(host.status).toBe(403);
    const post = await curl(child.proxy_url, GITHUB, 'POST');
    expect(post.status).toBe(403);
    expect(JSON.parse(post.body).error).toMatchObject({ code: 'policy_denied', grant: 'github' });
    expect(JSON.parse(post.body).error.message).toContain('agents.lead.rules[0]');
    expect(upstream.seen.length).toBe(seen);
  });

  it("asks a person for a child's request where its parent's rule would", async () => {
    const child = await delegate('gated', '--name', 'gated-kid');
    await served(child.proxy_url);
    const seen = upstream.seen.length;
    const post = await curl(child.proxy_url, GITHUB, 'POST');
    expect(post.status).toBe(403);
    expect(JSON.parse(post.body).error).toMatchObject({ code: 'approval_required' });
    expect(upstream.seen.length).toBe(seen);
  });

  it('cuts a child when a reload removes its config parent, and it does not come back with the parent', async () => {
    const child = await delegate('gated', '--name', 'gated-kid-2');
    await served(child.proxy_url);
    const path = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(path, 'utf8')) as { agents: Record<string, unknown> };
    const gated = config.agents['gated'];
    delete config.agents['gated'];
    writeFileSync(path, stringify(config));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    await cut(child.proxy_url, 'the child of a removed config agent to be refused');
    config.agents['gated'] = gated;
    writeFileSync(path, stringify(config));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    // Gone from the store with it: the parent added again under the same key has no children.
    expect(await names()).not.toContain('gated-kid-2');
    await served(`http://gated:other-key-0123456789abcdef@127.0.0.1:${proxy.port}`);
    expect((await curl(child.proxy_url)).status).toBe(407);
  });

  it('holds the depth when a record is edited by hand to say more', async () => {
    const rootKey = 'root-key-0123456789abcdef';
    // A root whose depth was edited to 9: it may mint 3 generations, no more.
    await editStore((set) => set(record('deep-root', rootKey, undefined, { grants: ['github'], delegation_depth: 9 })));
    await served(proxyUrl('deep-root', rootKey));
    const tooDeep = await cli('agents', 'delegate', 'deep-root', '--name', 'g1', '--depth', '3');
    expect(tooDeep.code).toBe(1);
    expect(tooDeep.stderr).toContain('depth 3 is more than agent "deep-root" may hand on (2');
    await delegate('deep-root', '--name', 'g1', '--depth', '2');
    await delegate('g1', '--name', 'g2', '--depth', '1');
    const g3 = await delegate('g2', '--name', 'g3');
    // The third generation, edited to a depth of 5, still mints nothing: no chain is longer than 3.
    await editStore((set, get) => set({ ...get('g3')!, delegation_depth: 5 }));
    await served(g3.proxy_url);
    const g4 = await cli('agents', 'delegate', 'g3', '--name', 'g4');
    expect(g4.code).toBe(1);
    expect(g4.stderr).toContain('no delegation depth left');
    expect(await names()).not.toContain('g4');
  });

  it('refuses a child edited by hand: wider grants, a parent link to another agent, a chain too long, a loop', async () => {
    const child = await delegate('lead', '--name', 'edited');
    await served(child.proxy_url);
    const key = new URL(child.proxy_url).password;
    // Grants wider than the parent's: cut to the parent's at each table build.
    await editStore((set, get) => set({ ...get('edited')!, grants: ['github', 'slack'] }));
    const seen = upstream.seen.length;
    expect((await curl(child.proxy_url, SLACK)).status).toBe(403);
    expect(upstream.seen.length).toBe(seen);
    // Its parent link moved to another agent (one with every grant): the key hash is lead's, so no agent.
    await editStore((set, get) => set({ ...get('edited')!, parent: 'other' }));
    await cut(child.proxy_url, 'a child linked to another parent to be refused');
    // A chain of five, written by hand with every key hash right: the fourth generation is no agent.
    const k = (id: string) => `${id}-key-0123456789abcdef`;
    await editStore((set) => {
      set(record('h0', k('h0'), undefined, { grants: ['github'] }));
      for (let i = 1; i <= 4; i++) set(record(`h${i}`, k(`h${i}`), { id: `h${i - 1}`, key: k(`h${i - 1}`) }));
    });
    await served(proxyUrl('h3', k('h3')));
    expect((await curl(proxyUrl('h4', k('h4')))).status).toBe(407);
    // A loop: each the other's parent, each with the other's key hash.
    await editStore((set) => {
      set(record('loop-a', k('loop-a'), { id: 'loop-b', key: k('loop-b') }));
      set(record('loop-b', k('loop-b'), { id: 'loop-a', key: k('loop-a') }));
    });
    expect((await curl(proxyUrl('loop-a', k('loop-a')))).status).toBe(407);
    expect((await curl(proxyUrl('loop-b', k('loop-b')))).status).toBe(407);
    // The proxy goes on serving the agents around them.
    expect((await curl(proxyUrl('edited', key), GITHUB)).status).toBe(407);
    expect((await curl(proxyUrl('lead', LEAD_KEY))).status).toBe(200);
    // What went up since: three markers, h3 and lead; nothing of the edited children.
    expect(upstream.seen.slice(seen).length).toBe(5);
  });

  it('gives a child no door to its own rules: its key opens neither the admin API nor a reload', async () => {
    const child = await delegate('lead', '--name', 'rewriter');
    await served(child.proxy_url);
    const key = new URL(child.proxy_url).password;
    const admin = adminClient(proxy);
    const before = proxy.auditLines().length;
    for (const headers of [
      { authorization: `Bearer ${key}` },
      { authorization: `Basic ${Buffer.from(`rewriter:${key}`).toString('base64')}` },
      { 'x-api-key': key },
    ]) {
      for (const [method, path, body] of [
        ['POST', '/api/reload', undefined],
        ['POST', '/api/agents/lead/delegate', { name: 'wider', grants: ['slack'] }],
        ['GET', '/api/agents', undefined],
      ] as const) {
        const res = await fetch(`${admin.base}${path}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        await res.text();
        expect(res.status, `${method} ${path}`).toBe(401);
      }
    }
    // Through the proxy, as an agent would reach it: the admin listener is loopback, not a destination.
    const viaProxy = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `Authorization: Bearer ${key}`, `${admin.base}/api/reload`],
      cleanEnv({ HTTP_PROXY: child.proxy_url, NO_PROXY: '' }),
    );
    expect(Number(viaProxy.stdout)).not.toBe(200);
    expect(Number(viaProxy.stdout)).not.toBe(0);
    expect(
      proxy
        .auditLines()
        .slice(before)
        .filter((l) => l['action'] === 'reload' || l['agent'] === 'wider'),
    ).toEqual([]);
    expect(await names()).not.toContain('wider');
  });

  it("refuses a child's key replayed after the child was removed, after another of its name was minted, and under another name", async () => {
    const child = await delegate('lead', '--name', 'replayed');
    await served(child.proxy_url);
    expect((await cli('agents', 'rm', 'replayed')).code).toBe(0);
    await cut(child.proxy_url, 'the removed child to be refused');
    const again = await delegate('lead', '--name', 'replayed');
    await served(again.proxy_url);
    expect((await curl(child.proxy_url)).status).toBe(407);
    // Nor does a child's key open its parent, nor the parent's key the child.
    expect((await curl(proxyUrl('lead', new URL(again.proxy_url).password))).status).toBe(407);
    expect((await curl(proxyUrl('replayed', LEAD_KEY))).status).toBe(407);
  });

  it('ties a delegation racing a rotation of the parent key to the key that stands: no child outlives the old key', async () => {
    expect((await cli('agents', 'add', 'rot', '--grants', 'github')).code).toBe(0);
    for (let round = 0; round < 3; round++) {
      const name = `rot-kid-${round}`;
      const [minted, rotated] = await Promise.all([cli('agents', 'delegate', 'rot', '--name', name, '--json'), cli('agents', 'rotate-key', 'rot', '--json')]);
      expect(rotated.code, rotated.stderr).toBe(0);
      const parentUrl = (JSON.parse(rotated.stdout) as { proxy_url: string }).proxy_url;
      await served(parentUrl);
      // Minted before the rotation: removed with the old key. After it: the new key's child, served.
      if (minted.code === 0 && (await names()).includes(name)) await served((JSON.parse(minted.stdout) as Minted).proxy_url);
      else if (minted.code === 0) await cut((JSON.parse(minted.stdout) as Minted).proxy_url, "the old key's child to be refused");
    }
    // Just rotated, then a delegation at once: the child stands under the new key.
    const rotated = JSON.parse((await cli('agents', 'rotate-key', 'rot', '--json')).stdout) as { proxy_url: string };
    const child = await delegate('rot', '--name', 'rot-after');
    await served(child.proxy_url);
    await served(rotated.proxy_url);
  });

  it('mints nothing through the door on a just-rotated key: not on a connection signed in before, nor racing the rotation', async () => {
    const added = JSON.parse((await cli('agents', 'add', 'door-rot', '--grants', 'github', '--json')).stdout) as { proxy_url: string };
    await served(added.proxy_url);
    const oldKey = new URL(added.proxy_url).password;
    /** The door on one kept-alive connection signed in with `key`. */
    const doorAs = (key: string) =>
      new ProxyAgent({
        uri: `http://127.0.0.1:${proxy.port}`,
        token: `Basic ${Buffer.from(`door-rot:${key}`).toString('base64')}`,
        requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') },
      });
    const mintOn = (dispatcher: ProxyAgent, name: string) =>
      request('https://keyway.internal/delegate', {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, grants: ['github'] }),
      }).then(
        async (r) => ({ status: r.statusCode, body: (await r.body.json().catch(() => ({}))) as { proxy_url?: string } }),
        () => ({ status: 0, body: {} as { proxy_url?: string } }),
      );
    const open = doorAs(oldKey);
    try {
      const health = await request('https://keyway.internal/healthz', { dispatcher: open });
      await health.body.text();
      expect(health.statusCode).toBe(200);
      const rotated = JSON.parse((await cli('agents', 'rotate-key', 'door-rot', '--json')).stdout) as { proxy_url: string };
      await served(rotated.proxy_url);
      // The connection signed in with the old key, kept open across the rotation: no child from it.
      const late = await mintOn(open, 'late');
      expect(late.status).not.toBe(201);
      // Racing the next rotation: a child minted just before it goes with the old key; none after it.
      let key = new URL(rotated.proxy_url).password;
      for (let round = 0; round < 3; round++) {
        const racing = doorAs(key);
        try {
          const [minted, rotatedAgain] = await Promise.all([mintOn(racing, `race-${round}`), cli('agents', 'rotate-key', 'door-rot', '--json')]);
          const parentUrl = (JSON.parse(rotatedAgain.stdout) as { proxy_url: string }).proxy_url;
          await served(parentUrl);
          key = new URL(parentUrl).password;
          if (minted.status === 201) expect((await curl(minted.body.proxy_url!)).status).toBe(407);
        } finally {
          await racing.close();
        }
      }
      expect((await names()).filter((n) => n.startsWith('door-rot-'))).toEqual([]);
      // The key that stands mints, and its child is served.
      const fresh = doorAs(key);
      try {
        const minted = await mintOn(fresh, 'fresh');
        expect(minted.status).toBe(201);
        await served(minted.body.proxy_url!);
      } finally {
        await fresh.close();
      }
    } finally {
      await open.close();
    }
  });
});
