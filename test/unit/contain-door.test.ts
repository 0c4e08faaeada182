// The contain door's header (issue 47): one line of JSON naming the agent and the port; anything
// else is refused, so a connection that is not keyway run --contain's gets nothing served.
import { describe, expect, it } from 'vitest';
import { type DoorHeader, encodeDoorHeader, parseDoorHeader } from '../../src/proxy/transparent/contain-door.ts';

describe('parseDoorHeader', () => {
  it('reads back what keyway run --contain writes', () => {
    const headers: DoorHeader[] = [
      { v: 1, kind: 'connection', agent: 'bot', port: 443, served: [443, 80] },
      { v: 1, kind: 'connection', agent: null, port: null, served: [443, 80, 8443] },
      { v: 1, kind: 'start', agent: 'bot', sockets: ['/run/user/1000/ssh.sock'] },
    ];
    for (const header of headers) {
      const line = encodeDoorHeader(header).toString('utf8');
      expect(line.endsWith('\n')).toBe(true);
      expect(parseDoorHeader(line.slice(0, -1))).toEqual(header);
    }
  });

  it('refuses anything else: not JSON, another version, a port out of range, a wrong type, an empty agent', () => {
    for (const line of [
      'GET / HTTP/1.1',
      '{"v":2,"kind":"connection","agent":"bot","port":443,"served":[443]}',
      '{"v":1,"kind":"connection","agent":"bot","port":70000,"served":[443]}',
      '{"v":1,"kind":"connection","agent":"bot","port":443,"served":["443"]}',
      '{"v":1,"kind":"connection","agent":"","port":443,"served":[443]}',
      '{"v":1,"kind":"connection","agent":7,"port":443,"served":[443]}',
      '{"v":1,"kind":"start","agent":"bot","sockets":[1]}',
      '{"v":1,"kind":"other","agent":"bot"}',
      'null',
      '[]',
    ]) {
      expect(parseDoorHeader(line), line).toBeUndefined();
    }
  });
});
