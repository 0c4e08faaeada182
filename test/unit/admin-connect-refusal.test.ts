// The admin listener's answer to a CONNECT: the proxy's address without the credentials of the URL
// it is given, and a reason phrase that cannot end the status line early.
import { describe, expect, it } from 'vitest';
import { connectRefusal, reasonPhrase } from '../../src/admin/connect-refusal.ts';

describe('the admin listener refusing a CONNECT', () => {
  it("names the proxy's address, never the credentials in its URL", () => {
    const message = connectRefusal('http://agent:sekret@127.0.0.1:8787');
    expect(message).toBe("this is keyway's admin API, not its proxy: point HTTPS_PROXY at http://127.0.0.1:8787");
    expect(connectRefusal('http://a:b@[::1]:9000')).toContain('http://[::1]:9000');
  });

  it('keeps tab, space and visible ASCII in the reason phrase, and turns anything else into a space', () => {
    expect(reasonPhrase("it's\tfine: http://127.0.0.1:1 (ok)")).toBe("it's\tfine: http://127.0.0.1:1 (ok)");
    expect(reasonPhrase('a\r\nSet-Cookie: x=1\u0000é\u2028b')).toBe('a  Set-Cookie: x=1   b');
  });
});
