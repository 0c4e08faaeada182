import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { listRotated, readAudit, verifyAudit } from '../../src/audit/index.ts';
import { LINE_BOUND, ROOM_FLOOR } from '../../src/audit/file/room.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { cleanEnv, makeHome, TEST_HOSTS } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

// audit.min_retention trades evidence for disk: files it keeps past audit.keep use space, and when
// the space truly runs out the disk guard (src/audit/file/room.ts) must still fail closed: injected
// requests refused 503 audit_unavailable, nothing forwarded, and the kept lines still there.
// A real small disk: keyway runs in its own mount namespace (unshare) with logs/ on a 3 MiB tmpfs.
// It needs unshare (util-linux, installed by .ci/run) and user namespaces: where they are missing
// the test fails saying so, rather than skip a check nobody would then notice was gone.

const TMPFS_SIZE = '3m';
const MAX_REQUESTS = 3000; // bounds the flood; the disk fills after a few hundred ~6 KiB lines
const FLOOD_LIMIT_MS = 120_000;

function canMountTmpfs(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-tmpfs-probe-'));
  try {
    execFileSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs "${dir}"`], { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(dir);
  }
}

describe('audit.min_retention on a disk that fills', () => {
  let upstream: TestUpstream | undefined;
  let proxy: ChildProxy | undefined;
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('keeps the lines past keep until the disk is full, then refuses injection (503 audit_unavailable) and /readyz fails', async () => {
    expect(canMountTmpfs(), 'unshare -rm cannot mount a tmpfs here (user namespaces off?): this test needs a real small disk').toBe(true);
    upstream = await startUpstream();
    const home = makeHome();
    const logs = join(home, 'logs');
    mkdirSync(logs, { recursive: true });
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
        audit: { max_bytes: '16KiB', keep: 2 }, // min_retention: its default, 1h // min_retention: its default, 1h
        grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GH_SECRET' } },
      }),
    );
    const masterKey = randomBytes(32);
    const adminPort = await freePort();
    proxy = await startChildProxy({
      home,
      adminPort,
      env: cleanEnv({ KEYWAY_MASTER_KEY: masterKey.toString('base64'), GH_SECRET: `${CANARY}-github` }),
      wrap: ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o size=${TMPFS_SIZE} tmpfs "$0" && exec "$@"`, logs],
    });
    const authority = `api.example.test:${upstream.port}`;
    const bundle = join(home, 'certs', 'bundle.pem');
    const first = await curl(['--fail-with-body', '-x', `http://127.0.0.1:${proxy.port}`, '--cacert', bundle, `https://${authority}/echo?tag=first`], {});
    expect(first.code, first.stderr).toBe(0);

    // Flood until refused (bounded in count and time).
    const session = await h2ThroughProxy(proxy.port, authority, join(home, 'certs', 'ca.pem'));
    let served = 0;
    let refusal: { status: unknown; code: unknown } | undefined;
    const started = Date.now();
    try {
      for (let i = 0; i < MAX_REQUESTS && Date.now() - started < FLOOD_LIMIT_MS && refusal === undefined; i++) {
        const r = await h2Request(session, { ':method': 'GET', ':path': `/flood/${i}/${'b'.repeat(6000)}` });
        if (Number(r.headers[':status']) === 200) served++;
        else refusal = { status: r.headers[':status'], code: (JSON.parse(r.body.toString()) as { error?: { code?: string } }).error?.code };
      }
    } finally {
      session.close();
    }
    expect(refusal).toEqual({ status: 503, code: 'audit_unavailable' });
    expect(served).toBeGreaterThan(50);
    // Refused before forwarding: the upstream saw exactly the requests that were served.
    expect(upstream.seen.filter((s) => s.url.startsWith('/flood/'))).toHaveLength(served);

    // Not ready while injected requests are refused: once short of room, the writer stays so until
    // RESUME_SPARE is back (the lines appended after the refusal give back a little, never that much).
    const ready = await request(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(slack(5_000)) });
    const body = (await ready.body.json()) as { reason?: string; warnings?: Record<string, string> };
    expect(ready.statusCode).toBe(503);
    expect(body.reason).toMatch(/^audit: /);
    expect(body.warnings?.['audit_retention']).toMatch(/past audit.keep/);

    // The log as keyway's mount namespace sees it. Lines of served requests still queued when the
    // refusal came land within moments (their room was promised): wait for them, bounded.
    const path = `/proc/${proxy.child.pid}/root${logs}/audit.jsonl`;
    const paths = async () => {
      // Injected requests' lines only: the refusal's own line is written too if it fits.
      const out: string[] = [];
      for await (const line of readAudit(path)) if (line.decision === 'inject') out.push(line.path ?? '');
      return out;
    };
    let ids = await paths();
    for (const deadline = Date.now() + 10_000; ids.length < served + 1 && Date.now() < deadline; ids = await paths()) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Every line kept, nothing pruned, and the disk truly near full: less than the guard's floor
    // (1 MiB) plus a few line bounds is left.
    expect((await listRotated(path)).length).toBeGreaterThan(10);
    const fs = await statfs(`/proc/${proxy.child.pid}/root${logs}`);
    expect(fs.bavail * fs.bsize).toBeLessThan(ROOM_FLOOR + 4 * LINE_BOUND);
    expect(ids[0]).toBe('/echo');
    expect(ids.filter((p) => p.startsWith('/flood/'))).toHaveLength(served);
    const verified = await verifyAudit({ path, headPath: join(home, 'data', 'audit-head.json'), headKey: deriveAuditHeadKey(masterKey) });
    expect(verified).toMatchObject({ ok: true, problems: [] });
    expect(verified.pruned).toBeUndefined();
    expect(readFileSync(join(home, 'data', 'audit-head.json'), 'utf8')).not.toContain(CANARY);
  });
});
