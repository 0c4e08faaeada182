import { describe, expect, it } from 'vitest';
import type { PolicyQuery } from '../../../src/policy/cedar/contract.ts';
import { type CedarEngine, loadCedarEngine } from '../../../src/policy/cedar/engine.ts';
import { makeJudge } from '../../../src/policy/cedar/judge.ts';
import { parsePolicyFile } from '../../../src/policy/cedar/parse.ts';

// judge.ts remembers an answer for the same question within the same minute: these show it asks
// the engine once for a repeat, again for anything that differs, and never hands one request
// another's answer.

const POLICIES = `@id("no-admin")
forbid (principal, action, resource) when { context.path like "/admin*" };

@id("late")
forbid (principal, action, resource) when { context.time.utc >= datetime("2026-11-29T10:00:30Z") && context.path == "/late" };
`;

async function countingJudge() {
  const engine = await loadCedarEngine();
  let asked = 0;
  const counting = {
    ...engine,
    statefulIsAuthorized: (call: Parameters<CedarEngine['statefulIsAuthorized']>[0]) => {
      asked++;
      return engine.statefulIsAuthorized(call);
    },
  } as CedarEngine;
  const judge = makeJudge(counting, parsePolicyFile(engine, '/policies/a.cedar', POLICIES));
  return { judge, asked: () => asked };
}

const query = (context: Partial<PolicyQuery['context']> = {}, over: Partial<PolicyQuery> = {}): PolicyQuery => ({
  agent: 'claude',
  parents: [],
  action: 'request',
  grant: 'github',
  ...over,
  context: {
    method: 'GET',
    host: 'api.github.com',
    port: 443,
    path: '/repos/a/b',
    queryKeys: [],
    bodySize: 0,
    time: new Date('2026-11-29T10:00:05Z'),
    sourceIp: '127.0.0.1',
    ...context,
  },
});

describe('a judge remembers answers', () => {
  it('asks the engine once for the same question within a minute, and again in the next', async () => {
    const { judge, asked } = await countingJudge();
    const first = judge(query());
    expect(judge(query({ time: new Date('2026-11-29T10:00:59.999Z') }))).toEqual(first);
    expect(asked()).toBe(1);
    judge(query({ time: new Date('2026-11-29T10:01:00Z') }));
    expect(asked()).toBe(2);
  });

  it('never gives one request the answer of another that differs in anything the policy may read', async () => {
    const { judge, asked } = await countingJudge();
    expect(judge(query()).allowed).toBe(false); // no permit in the set
    expect(judge(query()).deciding).toEqual([]);
    expect(judge(query({ path: '/admin/users' }))).toEqual({ allowed: false, deciding: ['no-admin'], errors: [] });
    const variants: PolicyQuery[] = [
      query({ method: 'POST' }),
      query({ host: 'uploads.github.com' }),
      query({ port: 8443 }),
      query({ queryKeys: ['page'] }),
      query({ bodySize: 10 }),
      query({ bodySize: undefined }),
      query({ sourceIp: '10.0.0.1' }),
      query({ mcpTool: 'search' }, { action: 'mcp_call' }),
      query({}, { agent: 'codex' }),
      query({}, { parents: ['lead'] }),
      query({}, { grant: 'other' }),
    ];
    const before = asked();
    for (const v of variants) judge(v);
    expect(asked()).toBe(before + variants.length);
    // And the remembered refusal stays with its own path.
    expect(judge(query({ path: '/admin/users' })).deciding).toEqual(['no-admin']);
    expect(judge(query()).deciding).toEqual([]);
  });

  it('gives policies the clock to the minute: a time inside the minute reads as its start', async () => {
    const { judge } = await countingJudge();
    // 10:00:45 reads as 10:00:00, before the policy's 10:00:30: not forbidden until 10:01.
    expect(judge(query({ path: '/late', time: new Date('2026-11-29T10:00:45Z') })).deciding).toEqual([]);
    expect(judge(query({ path: '/late', time: new Date('2026-11-29T10:01:00Z') })).deciding).toEqual(['late']);
  });
});
