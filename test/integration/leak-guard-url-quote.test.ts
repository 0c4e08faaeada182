import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

// The leak guard against the secret percent-encoded by the commonest URL encoder that escapes
// everything but RFC 3986's unreserved characters: Python's urllib.parse.quote, which by default
// keeps '/' (quote(s)) and otherwise escapes it (quote(s, safe=''), quote_plus; Go's QueryEscape
// writes the same). An AWS-style secret has '/' and '+', and some have '!': neither
// encodeURIComponent's form nor the every-byte form is that text.

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE!KEY=';
const ENCODED = execFileSync('python3', ['-c', 'import sys, urllib.parse as u; s = sys.argv[1]; print(u.quote(s)); print(u.quote(s, safe=""))', SECRET], {
  encoding: 'utf8',
})
  .trim()
  .split('\n');

describe('the leak guard on the secret URL-quoted as RFC 3986 encoders write it', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'https://upstream');
    if (url.pathname !== '/quoted') return false;
    const token = (req.headers.authorization ?? '').slice(7);
    // The upstream really received the secret: the form echoed is the secret's, or nothing is.
    const forms = token === SECRET ? ENCODED : [];
    const text = JSON.stringify({ next: forms.map((f) => `https://example.test/cb?token=${f}&x=1`) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
    return true;
  };

  beforeAll(async () => {
    upstream = await startUpstream({ handler });
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }] });
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await dispatcher?.close().catch(() => undefined);
    await proxy?.stop();
    await upstream?.close();
  });

  it('redacts quote(s) and quote(s, safe="")', async () => {
    // The two forms differ from each other and from encodeURIComponent's.
    expect(new Set(ENCODED).size).toBe(2);
    expect(ENCODED).not.toContain(encodeURIComponent(SECRET));
    const res = await request(`https://api.example.test:${upstream.port}/quoted`, { dispatcher, signal: AbortSignal.timeout(slack(20_000)) });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    const { next } = JSON.parse(text) as { next: string[] };
    expect(next).toHaveLength(2);
    for (const form of ENCODED) expect(text).not.toContain(form);
    for (const link of next) expect(link).toBe('https://example.test/cb?token=[redacted by keyway]&x=1');
  });
});
