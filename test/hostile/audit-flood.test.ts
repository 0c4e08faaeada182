import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy, tlsThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { report, scale } from './scale.ts';

// The audit flood (issue 21, "the agent can erase its own trail"): refused requests are cheap, and
// each used to write a line as long as its path, so an agent could fill the log (and, through
// rotation, delete the oldest evidence) as fast as it could send. Here one hostile agent sends
// refused requests with 15 KB paths on HTTP/1.1 and on HTTP/2, and wrong agent keys, and the audit
// must grow by a bounded amount (lines cut at 1 KiB of path, refusals past the budget folded into
// summary lines), while an allowed request's line is still there, in full, and the chain verifies.
// The long form (bench/audit-flood.ts) measures the rates.

const REFUSALS = scale(150, 2_000);
const WRONG_KEYS = scale(60, 500);
const PATH_BYTES = 15_000;
const AGENT = 'flood';
const KEY = 'flood-agent-key';

describe('audit flood', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let authority: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({
      env: { FLOOD_KEY: KEY },
      config: { agents: { [AGENT]: { key: 'env:FLOOD_KEY', rules: [{ grant: 'api', methods: ['GET'], paths: ['/echo'] }] } } },
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('refused long paths (HTTP/1.1 and HTTP/2) and wrong keys write a bounded audit; an allowed line survives', async () => {
    const before = statSync(proxy.auditPath).size;
    const path = (i: number) => `/denied/${i}/${'z'.repeat(PATH_BYTES)}`;

    // HTTP/1.1: one connection, one request after another (keep-alive), every answer read.
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn: ['http/1.1'], proxyAuth: `${AGENT}:${KEY}` });
    let h1 = 0;
    let buffered = '';
    let wake: (() => void) | undefined;
    tls.on('data', (c: Buffer) => {
      buffered += c.toString('latin1');
      wake?.();
    });
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < REFUSALS && Date.now() < deadline; i++) {
      tls.write(`GET ${path(i)} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        const length = end === -1 ? -1 : Number(/\r\ncontent-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (end !== -1 && buffered.length >= end + 4 + length) {
          if (buffered.startsWith('HTTP/1.1 403')) h1++;
          buffered = buffered.slice(end + 4 + length);
          break;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (Date.now() > deadline) break;
      }
    }
    tls.destroy();
    expect(h1).toBe(REFUSALS);

    // HTTP/2: one session, 10 streams at a time.
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, `${AGENT}:${KEY}`);
    let h2 = 0;
    for (let i = 0; i < REFUSALS; i += 10) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(10, REFUSALS - i) }, (_, j) => h2Request(session, { ':method': 'GET', ':path': path(i + j) })),
      );
      h2 += answers.filter((a) => Number(a.headers[':status']) === 403).length;
    }
    const allowed = await h2Request(session, { ':method': 'GET', ':path': '/echo' });
    session.close();
    expect(h2).toBe(REFUSALS);
    expect(allowed.headers[':status']).toBe(200);

    // Wrong agent keys, each on its own connection (keyway closes the connection once it throttles).
    const statuses: Record<number, number> = {};
    for (let i = 0; i < WRONG_KEYS; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port: proxy.port,
          agent: false,
          path: 'http://plain.example.test:1/x',
          headers: { 'proxy-authorization': `Basic ${Buffer.from(`${AGENT}:wrong-${i}`).toString('base64')}` },
          timeout: 5_000,
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('timeout', () => req.destroy(new Error('no answer')));
        req.on('error', reject);
        req.end();
      });
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    expect(statuses[407]).toBe(5);
    expect(statuses[429]).toBe(WRONG_KEYS - 5);

    await proxy.stop(); // writes the summary lines still pending
    const written = statSync(proxy.auditPath).size - before;
    report('audit-flood', { refusals_h1: REFUSALS, refusals_h2: REFUSALS, wrong_keys: WRONG_KEYS, audit_bytes: written });
    // Before the bounds: about 2 x REFUSALS x 15 KB (4.5 MB in the short form). Now at most the
    // per-actor budget of full lines (100, each under 3 KiB) plus a few summaries, per 10 s interval.
    expect(written).toBeLessThan(512 * 1024);
    const lines = proxy.auditLines();
    expect(lines.some((l) => l['decision'] === 'inject' && l['path'] === '/echo' && l['status'] === 200 && l['agent'] === AGENT)).toBe(true);
    const repeated = lines.reduce((n, l) => n + (typeof l['repeated'] === 'number' ? l['repeated'] : 0), 0);
    const refusals = lines.filter((l) => l['decision'] === 'deny' && l['repeated'] === undefined).length;
    // Every refusal is either a line or counted in a summary.
    expect(refusals + repeated).toBe(2 * REFUSALS + WRONG_KEYS);
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
  });
});
