import { readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ANSWER_TAPS,
  CLOSE_STAGES,
  HEAD_STAGES,
  REQUEST_BODY_STAGES,
  REQUEST_SENT_HOOKS,
  RUN_ENDED_HOOKS,
  TUNNEL_GUARDS,
  RESPONSE_BODY_STAGES,
  RESPONSE_HEAD_STAGES,
  SOCKET_TAPS,
} from '../../src/proxy/stages/index.ts';

// The request path is the list in src/proxy/stages/index.ts. Moving a stage changes what keyway
// does (a refresh before the rules would spend a token on a refused request; the audit reservation
// after injection would let a request out without its line): a reorder must be deliberate.

describe('the request path', () => {
  it('runs the head stages in this order, the credential ones only once a grant is chosen', () => {
    expect(HEAD_STAGES.map((s) => `${s.name}${s.injected ? ' (injected)' : ''}`)).toEqual([
      'version',
      'origin-form',
      'path',
      'host',
      'grant',
      'path-secret (injected)',
      'outgoing',
      'placeholders',
      'purpose',
      'audit-ready',
      'anomaly-signals (injected)',
      'access (injected)',
      'delegation (injected)',
      'purpose-required (injected)',
      'mcp (injected)',
      'limits (injected)',
      'budget (injected)',
      'anomaly (injected)',
      'approval (injected)',
      'anomaly-taught (injected)',
      'signing-plan (injected)',
      'capture (injected)',
      'credential (injected)',
      'purpose-redaction (injected)',
      'audit-reservation (injected)',
      'audit-write-ahead (injected)',
      'inject (injected)',
      'open-exchange (injected)',
    ]);
    // Every stage that reads or puts on the credential comes after the one that chooses the grant.
    const grant = HEAD_STAGES.findIndex((s) => s.name === 'grant');
    for (const [i, stage] of HEAD_STAGES.entries()) if (stage.injected) expect(i).toBeGreaterThan(grant);
  });

  it('runs the body and response stages in this order', () => {
    expect(REQUEST_BODY_STAGES.map((s) => s.name)).toEqual([
      'held-body',
      'capture-body',
      'model-body',
      'body-swap',
      'usage-option',
      'keep-for-replay',
      'sign',
      'count-body',
      'model-body-size',
    ]);
    expect(RESPONSE_HEAD_STAGES.map((s) => s.name)).toEqual(['leak-guard-headers', 'scope-hint']);
    expect(RESPONSE_BODY_STAGES.map((s) => s.name)).toEqual(['capture-answer', 'mcp-tools-list', 'leak-guard-body']);
  });

  it('hears the request sent, taps the answer, and closes in this order: the audit line last', () => {
    expect(REQUEST_SENT_HOOKS.map((s) => s.name)).toEqual(['model-sent']);
    expect(ANSWER_TAPS.map((s) => s.name)).toEqual(['model-meter']);
    // What the request counts against goes on its audit line before the line is written.
    expect(CLOSE_STAGES.map((s) => s.name)).toEqual(['byte-quota', 'model-count', 'audit-commit']);
    // A WebSocket's messages: the budget's gate sees what the agent sends before the placeholder search.
    expect(SOCKET_TAPS.map((s) => s.name)).toEqual(['model-socket', 'capture-socket']);
    // The run over (answered, refused or failed): what a stage held for it goes back.
    expect(RUN_ENDED_HOOKS.map((s) => s.name)).toEqual(['capture-release']);
    // At CONNECT, to a host no grant covers: read rather than tunnelled when a guard says so.
    expect(TUNNEL_GUARDS.map((s) => s.name)).toEqual(['capture-guard']);
  });

  it('lists every stage file once, and each file is a listed stage', () => {
    const SHARED = [
      'request.ts',
      'hooks.ts',
      'capture-exchange.ts',
      'views.ts',
      // spend: a model exchange's state and count; a connection's last model route and scope.
      'model-exchange.ts',
      'model-memo.ts',
      // login capture: the values held for each agent's leak guard.
      'held-values.ts',
    ];
    const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/proxy/stages');
    // index.ts lists them; request.ts, hooks.ts and capture-exchange.ts hold the types the stages and hooks share;
    // views.ts the features' views; the rest of SHARED, a feature's parts its stages (and the runtime) use, which
    // name its room and so live here, the one place of src/proxy/ that imports rooms.
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !['index.ts', ...SHARED].includes(f));
    const hooks = [...REQUEST_SENT_HOOKS, ...ANSWER_TAPS, ...CLOSE_STAGES, ...SOCKET_TAPS, ...RUN_ENDED_HOOKS, ...TUNNEL_GUARDS].map((s) => s.name);
    const names = [...HEAD_STAGES, ...REQUEST_BODY_STAGES, ...RESPONSE_HEAD_STAGES, ...RESPONSE_BODY_STAGES].map((s) => s.name).concat(hooks);
    expect(new Set(names).size).toBe(names.length);
    // A request-sent hook, an answer tap, a close stage, a socket tap, a run-ended hook or a tunnel
    // guard is one file of its name each (a socket tap's frame readers are in socket-readers/).
    for (const name of hooks) expect(files).toContain(`${name}.ts`);
    // body.ts and response.ts hold a kind of stage each (their type and its uses); body-swap.ts,
    // capture-body.ts, model-body.ts one body stage each (a placeholder swapped, a metered body read strictly), usage-option.ts two (include_usage
    // asked for, before a replay copy or a signature is made; a metered body's size counted); mcp-tools-list.ts and capture-answer.ts one response body stage each; the rest one head stage.
    expect(REQUEST_BODY_STAGES.map((s) => s.name)).toContain('body-swap');
    expect(RESPONSE_BODY_STAGES.map((s) => s.name)).toContain('mcp-tools-list');
    const headFiles = files
      .filter(
        (f) =>
          !['body.ts', 'response.ts', 'body-swap.ts', 'capture-body.ts', 'model-body.ts', 'usage-option.ts', 'mcp-tools-list.ts', 'capture-answer.ts'].includes(
            f,
          ),
      )
      .map((f) => f.replace(/\.ts$/, ''))
      .filter((name) => !hooks.includes(name));
    expect(headFiles.sort()).toEqual(HEAD_STAGES.map((s) => s.name).sort());
  });
});
