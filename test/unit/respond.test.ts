import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors/index.ts';
import { reasonLine, sendErrorOnSocket } from '../../src/proxy/respond.ts';

// The one-line reason keyway puts in X-Keyway-Reason and in a refused CONNECT's status line: one
// line of visible ASCII whatever the message holds, bounded in length.

describe('refusal reasons', () => {
  it('keeps a reason on one line of visible ASCII, at most 300 characters', () => {
    expect(reasonLine('plain reason')).toBe('plain reason');
    expect(reasonLine('a\r\nInjected: yes')).toBe('a??Injected: yes');
    expect(reasonLine('caf\u00e9 \u2026 \u0000')).toBe('caf? ? ?');
    const long = reasonLine('x'.repeat(1000));
    expect(long).toHaveLength(300);
    expect(long.endsWith('...')).toBe(true);
  });

  it('writes a refused CONNECT with the code and message in the status line and both headers', async () => {
    const socket = new PassThrough();
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => socket.once('finish', resolve));
    sendErrorOnSocket(socket, new ProxyError('host_not_allowed', 'no grant covers a.test\r\nX-Evil: 1', { hint: 'add it' }));
    await ended;
    const [head, body] = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n');
    const lines = head!.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 403 Forbidden (keyway host_not_allowed: no grant covers a.test??X-Evil: 1)');
    expect(lines).toContain('x-keyway-error: host_not_allowed');
    expect(lines).toContain('x-keyway-reason: no grant covers a.test??X-Evil: 1');
    expect(lines.some((l) => l.toLowerCase().startsWith('x-evil'))).toBe(false);
    expect(JSON.parse(body!)).toEqual({ error: { code: 'host_not_allowed', message: 'no grant covers a.test\r\nX-Evil: 1', grant: null, hint: 'add it' } });
  });
});
