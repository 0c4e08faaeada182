// The policy proofs over real traffic: requests sent through a real keyway by curl to a loopback
// upstream, then `keyway policy check | test | diff` run as the real CLI against the same home. check
// is asked first and the proxy must then do what it said; test under the policy in effect finds no
// difference; diff between two configs names exactly the requests whose verdict flips, and says
// whether authority was added. No output carries the grant's secret.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { cedarEngineLoaded } from '../../../src/policy/cedar/engine.ts';
import { adminClient } from '../../helpers/admin-api.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../../helpers/keyway.ts';
import { sendAs, startOkUpstream } from '../../helpers/proof-traffic.ts';
import type { TestUpstream } from '../../helpers/upstream.ts';

const SECRET = `${CANARY}-proofs`;

type Check = { verdict: string; stage: string | null; code: string | null; deciding: string[] };
type Differing = { seq: number; method: string; path: string; agent: string; verdict: string; stage: string | null };

describe('keyway policy check, test and diff over real traffic', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startOkUpstream();
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET },
        { id: 'other', type: 'bearer', domains: ['other.example.test'], secret: `${SECRET}-other` },
      ],
      env: { BOT_KEY: 'bot-key', OPS_KEY: 'ops-key' },
      config: {
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            rules: [
              { grant: 'api', methods: ['GET'], paths: ['/v1/**'] },
              { grant: 'api', deny: true, paths: ['/v1/admin/**'] },
            ],
          },
          ops: { key: 'env:OPS_KEY' },
        },
      },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function cli(args: string[]) {
    const r = await proxy.cli(args);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  const send = (agent: string, method: string, url: string, extra: string[] = []) => sendAs(proxy, outputs, agent, method, url, extra);

  const url = (host: string, path: string) => `https://${host}:${upstream.port}${path}`;

  // [agent, method, host, path, allowed, stage]
  const TRAFFIC: Array<[string, string, string, string, boolean, string | null]> = [
    ['bot', 'GET', 'api.example.test', '/v1/items', true, null],
    ['bot', 'GET', 'api.example.test', '/v1/admin/keys', false, 'rules'],
    ['bot', 'DELETE', 'api.example.test', '/v1/items', false, 'rules'],
    ['bot', 'GET', 'other.example.test', '/v1/items', false, 'grant'],
    ['ops', 'GET', 'api.example.test', '/v1/admin/keys', true, null],
    ['ops', 'POST', 'other.example.test', '/v2/things?token=abc', true, null],
  ];

  it('check says what the proxy then does, request by request, and names the stage that refused', async () => {
    for (const [agent, method, host, path, allowed, stage] of TRAFFIC) {
      const target = url(host, path);
      const asked = await cli(['policy', 'check', '--agent', agent, '--json', method, target]);
      const verdict = JSON.parse(asked.stdout) as Check;
      expect(verdict.verdict, `${agent} ${method} ${path}`).toBe(allowed ? 'allow' : 'deny');
      expect(verdict.stage).toBe(stage);
      expect(asked.code).toBe(allowed ? 0 : 1);
      const sent = await send(agent, method, target);
      if (allowed) expect(sent.status, `${agent} ${method} ${path}`).toBe(200);
      else {
        expect(sent.status).toBe(403);
        expect(sent.code).toBe(verdict.code);
      }
    }
    // The deciding rule is named as the proxy names it.
    const refused = JSON.parse((await cli(['policy', 'check', '--agent', 'bot', '--json', 'GET', url('api.example.test', '/v1/admin/x')])).stdout) as Check;
    expect(refused.deciding).toEqual(['yaml:agents.bot.rules[1]']);
  });

  it('test under the policy in effect finds every recorded verdict the same', async () => {
    // A GET that names DELETE in an override header: the access stage judges both, and refuses.
    const overridden = await send('bot', 'GET', url('api.example.test', '/v1/items'), ['-H', 'X-HTTP-Method-Override: DELETE']);
    expect(overridden).toEqual({ status: 403, code: 'policy_denied' });
    const r = await cli(['policy', 'test', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { compared: number; differing: unknown[]; not_replayable: unknown[] };
    expect(report.compared).toBe(TRAFFIC.length + 1);
    expect(report.differing).toEqual([]);
    expect(report.not_replayable).toEqual([]);
  });

  function configWith(name: string, agents: (agents: Record<string, { rules?: unknown[] }>) => void): string {
    const config = parse(readFileSync(join(proxy.home, 'config', 'keyway.yaml'), 'utf8')) as { agents: Record<string, { rules?: unknown[] }> };
    agents(config.agents);
    const file = join(proxy.home, `${name}.yaml`);
    writeFileSync(file, stringify(config));
    return file;
  }

  const seqOf = (agent: string, method: string, path: string) => {
    const line = proxy.auditLines().find((l) => l['agent'] === agent && l['method'] === method && l['path'] === path);
    return line?.['seq'];
  };

  it('diff names exactly the requests whose verdict flips, and the authority a wider config adds', async () => {
    const current = join(proxy.home, 'config', 'keyway.yaml');
    // Wider: the deny rule gone, DELETE allowed.
    const wider = configWith('wider', (a) => {
      a['bot']!.rules = [{ grant: 'api', methods: ['GET', 'DELETE'], paths: ['/v1/**'] }];
    });
    const r = await cli(['policy', 'diff', current, wider, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { differing: Differing[]; authority: { summary: string; items: Array<{ kind: string; what: string }> } };
    // The GET that named DELETE in an override header flips with the DELETE itself.
    const overridden = proxy.auditLines().find((l) => l['method_override'] === 'DELETE')?.['seq'];
    const bySeq = (a: unknown, b: unknown) => Number(a) - Number(b);
    expect(report.differing.map((d) => d.seq).sort(bySeq)).toEqual(
      [seqOf('bot', 'GET', '/v1/admin/keys'), seqOf('bot', 'DELETE', '/v1/items'), overridden].sort(bySeq),
    );
    expect(report.differing.every((d) => d.verdict === 'allow')).toBe(true);
    expect(report.authority.summary).toBe('authority added');
    expect(report.authority.items.map((i) => i.what).join('\n')).toContain('deny rule yaml:agents.bot.rules[1] (grant api) removed or changed');

    const text = await cli(['policy', 'diff', current, wider]);
    expect(text.stdout).toContain('authority added:');
  });

  it('diff of a config that only narrows says no authority added, and names the request it now refuses', async () => {
    const current = join(proxy.home, 'config', 'keyway.yaml');
    const narrower = configWith('narrower', (a) => {
      a['ops']!.rules = [{ grant: 'api', deny: true, paths: ['/v1/admin/**'] }];
    });
    const r = await cli(['policy', 'diff', current, narrower, '--json']);
    const report = JSON.parse(r.stdout) as { differing: Differing[]; authority: { summary: string; items: unknown[] } };
    // ops had every grant; with rules naming only api and no grants: list it holds api alone, so its
    // request on other.example.test is refused at the grant stage too.
    expect(report.differing.map((d) => [d.seq, d.verdict, d.stage])).toEqual([
      [seqOf('ops', 'GET', '/v1/admin/keys'), 'deny', 'rules'],
      [seqOf('ops', 'POST', '/v2/things'), 'deny', 'grant'],
    ]);
    expect(report.authority).toEqual({ summary: 'no authority added', items: [] });
  });

  it('refuses bad input with one line and exit 2', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'keyway-no-cedar-'));
    const broken = mkdtempSync(join(tmpdir(), 'keyway-broken-cedar-'));
    writeFileSync(join(broken, 'x.cedar'), 'permit (principal, action, resource) when { nope };\n', { mode: 0o600 });
    for (const args of [
      ['policy', 'test', '--policy', empty],
      ['policy', 'test', '--policy', broken],
      ['policy', 'diff', broken, empty],
      ['policy', 'check', '--agent', 'bot', 'GET', 'not a url'],
      ['policy', 'check', '--agent', 'nobody', 'GET', 'https://api.example.test/'],
      ['policy', 'check', 'GET', 'https://api.example.test/'],
      ['policy', 'test', '--policy', join(proxy.home, 'no-such-dir')],
      ['policy', 'test', '--since', 'yesterday-ish'],
      ['policy', 'diff', join(proxy.home, 'nope.cedar')],
      ['policy', 'frobnicate'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it("the admin API answers without loading Cedar's engine into keyway, which has no Cedar file", async () => {
    const admin = adminClient(proxy);
    const policy = await admin.call('GET', '/api/policy');
    expect(policy.status).toBe(200);
    expect(policy.body).toMatchObject({ files: [], lint: [] });
    const replay = await admin.call('POST', '/api/policy/test', {});
    expect(replay.status).toBe(200);
    expect((replay.body as { differing: unknown[] }).differing).toEqual([]);
    outputs.push(JSON.stringify(policy.body), JSON.stringify(replay.body));
    expect(cedarEngineLoaded()).toBe(false);
  });

  it('never prints a secret or a query string', () => {
    const all = outputs.join('\n');
    expect(all).not.toContain(CANARY);
    expect(all).not.toContain('token=abc');
  });
});
