import { describe, expect, it } from 'vitest';
import { ProxyError, STATUS_BY_CODE } from '../../src/errors/index.ts';

describe('ProxyError', () => {
  it('maps each code to its documented status and never serialises the cause', () => {
    const err = new ProxyError('upstream_unreachable', 'TLS failure to api.example.test:443', {
      grant: 'github',
      cause: new Error('secret-canary-in-cause'),
    });
    expect(err.status).toBe(502);
    expect(STATUS_BY_CODE.proxy_auth_required).toBe(407);
    const body = JSON.parse(err.toBody());
    expect(body).toEqual({
      error: { code: 'upstream_unreachable', message: 'TLS failure to api.example.test:443', grant: 'github', hint: null },
    });
    expect(err.toBody()).not.toContain('secret-canary');
  });
});
