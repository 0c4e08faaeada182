import { describe, expect, it } from 'vitest';
import { ModelMemo } from '../../../src/proxy/stages/model-memo.ts';
import { type ModelApiHint, modelRoute } from '../../../src/spend/core/meters/routes.ts';

// Stage budget reuses a connection's last model route and scope (src/proxy/stages/model-memo.ts). A reused
// reading must be exactly what a fresh one would be, whatever a connection sends in between.

const APIS: ModelApiHint[] = [undefined, 'anthropic', 'openai', 'gemini', 'none'];
const HOSTS = [
  'api.anthropic.com',
  'API.Anthropic.com.',
  'api.openai.com',
  'generativelanguage.googleapis.com',
  'gateway.example',
  'us-central1-aiplatform.googleapis.com',
];
const METHODS = ['POST', 'GET', 'post', 'PUT', 'HEAD'];
const PATHS = [
  '/v1/messages',
  '/v1/messages/count_tokens',
  '/v1/messages/batches',
  '/v1/%6Dessages',
  '/v1/messages?beta=true',
  '/v1/messages/',
  '/v1//messages',
  '/V1/MESSAGES',
  '/v1/chat/completions',
  '/v1/responses',
  '/v1beta/models/gemini-2.5-pro:generateContent',
  '/v1beta/models/gemini-2.5-pro:predict',
  '/v1/projects/p/locations/l/publishers/anthropic/models/claude-x:rawPredict',
  '/api/event_logging',
];

const REUSED_AT_LEAST = 100;

type Call = [ModelApiHint, string, string, string];

/** A deterministic mix of calls: runs of the same one, as a kept-alive connection sends them, broken by others. */
function* sequence(count: number): Generator<Call> {
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let last: Call | undefined;
  for (let i = 0; i < count; i++) {
    if (last === undefined || next(3) !== 0)
      last = [APIS[next(APIS.length)], HOSTS[next(HOSTS.length)]!, METHODS[next(METHODS.length)]!, PATHS[next(PATHS.length)]!];
    // Each call's strings are new ones with the same text, as each request's are.
    yield [last[0], `${last[1]} `.trim(), `${last[2]} `.trim(), `${last[3]} `.trim()];
  }
}

describe('ModelMemo', () => {
  it('gives what modelRoute gives, call after call, whatever changes between them', () => {
    const memo = new ModelMemo();
    let reused = 0;
    let previous: unknown;
    for (const [api, host, method, path] of sequence(5_000)) {
      const got = memo.route(api, host, method, path);
      expect(got).toEqual(modelRoute(api, host, method, path));
      // A metered route is a new object from each fresh reading: the same one again is the memo's.
      if (got?.kind === 'metered' && got === previous) reused++;
      previous = got;
    }
    // The sequence repeats a call a third of the time: the memo was used, not bypassed.
    expect(reused).toBeGreaterThan(REUSED_AT_LEAST);
  });

  it('reuses the same frozen route for the same call, and reads a different path afresh', () => {
    const memo = new ModelMemo();
    const first = memo.route(undefined, 'api.anthropic.com', 'POST', '/v1/messages');
    expect(first).toEqual({ kind: 'metered', plan: { api: 'anthropic', route: 'anthropic-messages', requestModel: null } });
    // A different string with the same text (a new request's path) is the same call.
    const again = memo.route(undefined, 'api.anthropic.com', 'POST', ['/v1/', 'messages'].join(''));
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first?.kind === 'metered' && Object.isFrozen(first.plan)).toBe(true);
    expect(() => {
      (first as { kind: string }).kind = 'free';
    }).toThrow(TypeError);
    // The unlisted neighbours: a batch call and a percent-encoded path are not Messages calls.
    expect(memo.route(undefined, 'api.anthropic.com', 'POST', '/v1/messages/batches')).toEqual({ kind: 'unknown' });
    expect(memo.route(undefined, 'api.anthropic.com', 'POST', '/v1/%6Dessages')).toEqual({ kind: 'unknown' });
    expect(memo.route('none', 'api.anthropic.com', 'POST', '/v1/messages')).toBeUndefined();
    expect(memo.route(undefined, 'api.anthropic.com', 'GET', '/v1/messages')).toEqual({ kind: 'free' });
  });

  it('keeps one scope object while the agent, grant and end user stay, and a new one when any changes', () => {
    const memo = new ModelMemo();
    const a = memo.scope('agent-1', 'g', null);
    expect(a).toEqual({ agent: 'agent-1', grant: 'g', end_user: null });
    expect(memo.scope('agent-1', 'g', null)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(memo.scope('agent-1', 'g', 'alice')).toEqual({ agent: 'agent-1', grant: 'g', end_user: 'alice' });
    expect(memo.scope('agent-1', 'h', 'alice')).toEqual({ agent: 'agent-1', grant: 'h', end_user: 'alice' });
    expect(memo.scope(null, 'h', 'alice')).toEqual({ agent: null, grant: 'h', end_user: 'alice' });
    expect(memo.scope('agent-1', 'g', null)).toEqual(a);
  });
});
