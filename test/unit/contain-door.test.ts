// The contain door's lines (issue 47): a header naming what is asked, then (for rates) one question
// per line. Anything else is refused, so a connection that is not keyway run --contain's gets nothing.
import { describe, expect, it } from 'vitest';
import { type DoorHeader, encodeDoorLine, parseDoorHeader, parseRatesQuestion, parseRefusal } from '../../src/app/contain-door.ts';

describe('parseDoorHeader', () => {
  it('reads back what keyway run --contain writes', () => {
    const headers: DoorHeader[] = [
      { v: 1, kind: 'secrets', names: ['API_TOKEN', 'KEYWAY_MASTER_KEY'] },
      { v: 1, kind: 'join' },
      { v: 1, kind: 'start', agent: 'bot', sockets: ['/run/user/1000/ssh.sock'] },
      { v: 1, kind: 'start', agent: null, sockets: [] },
      // keyway run and env (cli/door-view.ts): which config they would load, by its text's hash.
      { v: 1, kind: 'client', home: '/home/me/.keyway', path: '/home/me/.keyway/config/keyway.yaml', sha256: 'a'.repeat(64) },
      { v: 1, kind: 'client', home: '/home/me/.keyway', path: null, sha256: null },
    ];
    for (const header of headers) {
      const line = encodeDoorLine(header).toString('utf8');
      expect(line.endsWith('\n')).toBe(true);
      expect(parseDoorHeader(line.slice(0, -1))).toEqual(header);
    }
  });

  it('refuses anything else: not JSON, another version, wrong types, an empty agent or name', () => {
    for (const line of [
      'GET / HTTP/1.1',
      '{"v":2,"kind":"join"}',
      '{"v":1,"kind":"secrets","names":"API_TOKEN"}',
      '{"v":1,"kind":"secrets","names":[""]}',
      '{"v":1,"kind":"secrets","names":[7]}',
      '{"v":1,"kind":"start","agent":"","sockets":[]}',
      '{"v":1,"kind":"start","agent":7,"sockets":[]}',
      '{"v":1,"kind":"start","agent":"bot","sockets":[1]}',
      '{"v":1,"kind":"connection","agent":"bot","port":443,"served":[443]}',
      '{"v":1,"kind":"client","home":null,"path":null,"sha256":null}',
      '{"v":1,"kind":"client","home":"/h","path":"","sha256":null}',
      '{"v":1,"kind":"client","home":"/h","path":"/h/c.yaml","sha256":"not-a-hash"}',
      '{"v":1,"kind":"client","home":"/h","path":"/h/c.yaml"}',
      'null',
      '[]',
    ]) {
      expect(parseDoorHeader(line), line).toBeUndefined();
    }
  });
});

describe('parseRefusal', () => {
  const event = {
    ts: '2026-11-25T00:00:00.000Z',
    id: 'x',
    agent: 'bot',
    grant: null,
    decision: 'deny',
    code: 'host_not_allowed',
    method: 'GET',
    host: 'h.test',
    port: 443,
    path: '/',
    status: 403,
    duration_ms: 1,
    refreshed: false,
  };
  it('takes a refusal line as the run hands it over', () => {
    expect(parseRefusal(JSON.stringify({ t: 'refusal', event }))).toEqual({ t: 'refusal', event });
  });
  it('refuses what is not a refusal: another decision, a malformed event', () => {
    expect(parseRefusal(JSON.stringify({ t: 'refusal', event: { ...event, decision: 'inject' } }))).toBeUndefined();
    expect(parseRefusal(JSON.stringify({ t: 'refusal', event: { ...event, host: 7 } }))).toBeUndefined();
    expect(parseRefusal(JSON.stringify({ t: 'refusal', event: [] }))).toBeUndefined();
  });
});

describe('parseRatesQuestion', () => {
  const rate = { count: 3, perMs: 60_000, burst: 3, text: '3/min' };
  it('takes a question as a worker sends it', () => {
    const question = { t: 'rates', id: 4, nowMs: 1_700_000_000_000, scopes: [{ kind: 'agent', name: 'bot', key: 'agent:bot', rate }] };
    expect(parseRatesQuestion(JSON.stringify(question))).toEqual(question);
  });
  it('refuses a malformed one', () => {
    for (const bad of [
      { t: 'rates', id: 'x', nowMs: 1, scopes: [] },
      { t: 'rates', id: 1, nowMs: 1, scopes: [{ kind: 'agent', name: 'bot', key: 'k', rate: { count: 'x', perMs: 1, burst: 1 } }] },
      { t: 'rates', id: 1, nowMs: 1, scopes: Array.from({ length: 17 }, () => ({ kind: 'agent', name: 'b', key: 'k', rate })) },
      { t: 'verdict', id: 1 },
    ]) {
      expect(parseRatesQuestion(JSON.stringify(bad))).toBeUndefined();
    }
  });
});
