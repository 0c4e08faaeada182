import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Range on injected requests (issue 21): an upstream that echoes the credential could hand it out
// in slices, each too short for the leak guard to recognise. keyway drops Range and If-Range on a
// request it injects into, unless the grant says allow_range (config, `grants add/set
// --allow-range`); a blind tunnel is never touched. The upstream records the headers it received.

const CONFIG_SECRET = 'kw-config-range-4d1f0a77c2';

describe('Range and If-Range on injected requests', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  /** keyway's CA (intercepted hosts) and the upstream's (a blind tunnel reaches the upstream itself). */
  let caFile: string;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({
      handler: (req, res) => {
        if (req.url !== '/echo-token') return false;
        // A debug endpoint that echoes the credential and honours Range, as static file servers do.
        const body = Buffer.from(`you sent: ${req.headers.authorization ?? ''}\n`);
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
        if (!range) {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) }).end(body);
          return true;
        }
        const [from, to] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
        const slice = body.subarray(from, to + 1);
        res
          .writeHead(206, { 'content-type': 'text/plain', 'content-length': String(slice.length), 'content-range': `bytes ${from}-${to}/${body.length}` })
          .end(slice);
        return true;
      },
    });
    proxy = await startProxy({
      grants: [
        { id: 'plain', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'ranged', type: 'bearer', domains: ['other.example.test'], secret: CANARY, allow_range: true },
      ],
      config: { grants: { 'cfg-ranged': { type: 'bearer', domains: ['bad.example.test'], secret: 'env:CONFIG_SECRET', allow_range: true } } },
      env: { CONFIG_SECRET },
    });
    const dir = mkdtempSync(join(tmpdir(), 'keyway-range-'));
    caFile = join(dir, 'cas.pem');
    writeFileSync(caFile, `${readFileSync(proxy.caPath, 'utf8')}\n${TLS_FIXTURES.ca}`);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  /** curl through keyway with Range and If-Range; the headers the upstream received for this request. */
  async function ranged(host: string, path = '/echo'): Promise<{ headers: Record<string, unknown>; stdout: string }> {
    const marked = `${path}${path.includes('?') ? '&' : '?'}n=${Math.random().toString(36).slice(2)}`;
    const url = `https://${host}:${upstream.port}${marked}`;
    const r = await curl(['-i', '-H', 'Range: bytes=0-3', '-H', 'If-Range: "v1"', '--cacert', caFile, url], cleanEnv({ HTTPS_PROXY: proxy.url }));
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    const seen = upstream.seen.find((s) => s.url === marked);
    expect(seen, `the upstream saw ${marked}`).toBeDefined();
    return { headers: seen!.headers, stdout: r.stdout };
  }

  it('drops them on a request keyway injects into', async () => {
    const { headers } = await ranged('api.example.test');
    expect(headers['authorization']).toBe(`Bearer ${CANARY}`);
    expect(headers['range']).toBeUndefined();
    expect(headers['if-range']).toBeUndefined();
  });

  it('passes them on for a grant with allow_range (store and config)', async () => {
    for (const host of ['other.example.test', 'bad.example.test']) {
      const { headers } = await ranged(host);
      expect(headers['authorization'], host).toMatch(/^Bearer /);
      expect(headers['range'], host).toBe('bytes=0-3');
      expect(headers['if-range'], host).toBe('"v1"');
    }
  });

  it('passes them on through a blind tunnel (no grant: nothing is injected, nothing is touched)', async () => {
    const { headers } = await ranged('tunnel.example.test');
    expect(headers['authorization']).toBeUndefined();
    expect(headers['range']).toBe('bytes=0-3');
    expect(headers['if-range']).toBe('"v1"');
  });

  it('an upstream that echoes the secret cannot hand it out in slices', async () => {
    // Slices of 4 bytes from the echo, all of it: with Range each is too short for the guard.
    const received: string[] = [];
    for (let from = 0; from < 50; from += 4) {
      const r = await curl(
        ['-s', '-H', `Range: bytes=${from}-${from + 3}`, '--cacert', caFile, `https://api.example.test:${upstream.port}/echo-token`],
        cleanEnv({ HTTPS_PROXY: proxy.url }),
      );
      outputs.push(r.stdout, r.stderr);
      received.push(r.stdout);
    }
    // Each answer is the whole echo, redacted; never a 206 slice.
    expect(received.every((body) => body.startsWith('you sent: '))).toBe(true);
    const joined = received.map((body) => (body.startsWith('you sent: ') ? '' : body)).join('');
    expect(joined).not.toContain(CANARY.slice(0, 8));
  });

  it('keyway grants add --allow-range and grants set --no-allow-range reach the running proxy', async () => {
    const add = await proxy.cli(
      ['grants', 'add', 'cli-ranged', '--type', 'bearer', '--domains', 'slow.example.test', '--allow-range', '--secret-stdin'],
      CANARY,
    );
    outputs.push(add.stdout, add.stderr);
    expect(add.code, add.stderr).toBe(0);
    const show = await proxy.cli(['grants', 'show', 'cli-ranged']);
    expect(show.stdout).toMatch(/^Range requests: +passed on \(weakens the leak guard\)$/m);
    await eventually(async () => expect((await ranged('slow.example.test')).headers['range']).toBe('bytes=0-3'));

    const set = await proxy.cli(['grants', 'set', 'cli-ranged', '--no-allow-range']);
    outputs.push(set.stdout, set.stderr);
    expect(set.code, set.stderr).toBe(0);
    expect((await proxy.cli(['grants', 'show', 'cli-ranged', '--json'])).stdout).toContain('"allow_range": false');
    await eventually(async () => expect((await ranged('slow.example.test')).headers['range']).toBeUndefined());
  });

  it('canary: the secret is in no output the tests collected', () => {
    const haystack = [...outputs, readFileSync(proxy.auditPath, 'utf8'), proxy.logs.join('')].join('\n');
    expect(haystack).toContain('you sent: '); // the search is over real answers
    expect(haystack).not.toContain(CANARY);
    expect(haystack).not.toContain(CONFIG_SECRET);
  });
});

/** Retries `check` until it passes, for up to 5 s: the proxy reads a store change within a second. */
async function eventually(check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
