import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as connectH2 } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_PROBE_MS } from '../../src/proxy/http2/client-probe.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { tlsThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// A client killed in the middle of a download it reads slowly. Its kernel resets the connection,
// and keyway must let go of the stream, the upstream request and the connection soon, not at
// body_stall (60 s by default). Over HTTP/2 nothing in node:http2 noticed (see
// src/proxy/http2/client-probe.ts): before the fix, curl --http2 killed this way held its connection
// until body_stall. A live client that reads slowly must not be cut by the check that finds a dead one.

const BIG = 256 * 1024 * 1024;
/**
 * The longest keyway may take to notice: a probe interval, plus slack for a loaded machine (3 s
 * idle, stretched by the load measured as the file starts; at most 20 s, well short of body_stall's 60).
 */
const NOTICED_MS = CLIENT_PROBE_MS + slack(3_000, 20_000);

describe('a client that dies during a download it reads slowly', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let url: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    // The default body_stall (60 s): a release within seconds is the probe's, not the stall timer's.
    proxy = await startProxy({ grants: [{ id: 'dl', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    url = `https://api.example.test:${upstream.port}/download?n=${BIG}`;
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const curl = (...args: string[]) =>
    spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', '-x', proxy.url, '--cacert', proxy.caPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  const closedDownloads = () => proxy.auditLines().filter((l) => l['path'] === '/download' && l['code'] === 'client_closed').length;

  for (const version of ['--http1.1', '--http2']) {
    it(
      `${version}: killed, it is let go within seconds, audited as client_closed`,
      async () => {
        const tag = `dead${version.replace(/\W/g, '')}`;
        const closedBefore = closedDownloads();
        const child = curl(version, '--limit-rate', '8k', `${url}&tag=${tag}`);
        await waitFor(() => (upstream.seen.some((s) => s.url.includes(`tag=${tag}`)) ? true : undefined), 'the download to reach the upstream');
        // Long enough for keyway's writes to back up behind the slow reader.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(proxy.running.connectionCount()).toBeGreaterThan(0);
        const killed = Date.now();
        child.kill('SIGKILL');
        await waitFor(() => (proxy.running.connectionCount() === 0 ? true : undefined), 'keyway to let go of the connection', NOTICED_MS);
        expect(Date.now() - killed).toBeLessThan(NOTICED_MS);
        await waitFor(() => (closedDownloads() > closedBefore ? true : undefined), 'the audit line');
      },
      30_000 + NOTICED_MS,
    );
  }

  it(
    '--http2: a client that sends its FIN while a download waits on it is let go within seconds',
    async () => {
      const tls = await tlsThroughProxy(proxy.port, `api.example.test:${upstream.port}`, proxy.caPath);
      const session = connectH2(`https://api.example.test:${upstream.port}`, { createConnection: () => tls });
      session.on('error', () => undefined);
      const closedBefore = closedDownloads();
      const stream = session.request({ ':path': `/download?n=${BIG}&tag=fin` });
      stream.on('error', () => undefined);
      await once(stream, 'response');
      stream.pause(); // reads nothing more: keyway's stream waits on a window that never opens
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const finished = Date.now();
      tls.end(); // FIN: no more frames from this client, so no WINDOW_UPDATE either
      try {
        await waitFor(() => (proxy.running.connectionCount() === 0 ? true : undefined), 'keyway to let go of the connection', NOTICED_MS);
        expect(Date.now() - finished).toBeLessThan(NOTICED_MS);
        await waitFor(() => (closedDownloads() > closedBefore ? true : undefined), 'the audit line');
      } finally {
        session.destroy();
      }
    },
    30_000 + NOTICED_MS,
  );

  it('--http2: alive but slow, it is not cut by the probes (it reads through several)', async () => {
    const child = curl('--http2', '--limit-rate', '16k', '--max-time', String((2 * CLIENT_PROBE_MS + 2_000) / 1000), `${url}&tag=alive`);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const [code] = await once(child, 'close');
    // 28: curl's own --max-time. A reset by keyway would be 92 (HTTP/2 stream error) or 56.
    expect({ code, err: err.replace(/\d+ milliseconds.*/, '') }).toEqual({ code: 28, err: expect.stringContaining('Operation timed out') });
    expect(Number(out)).toBeGreaterThan(16 * 1024 * ((2 * CLIENT_PROBE_MS) / 1000) * 0.5);
  });
});
