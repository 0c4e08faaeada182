// keyway run --contain, and a host keyway cannot reach (issue 86: a contained `curl
// https://example.com` with no route got "wrong version number", the cause only in the audit). The
// command gets an answer its client can read: a TLS alert where keyway tunnels blind (a host no grant
// covers), the 502 upstream_unreachable with its body inside TLS where it intercepts; and the run's
// stderr names the host and the code, once a minute per host, with no query string. curl and Node's
// fetch, as a contained agent runs them. unreachable-answers.test.ts checks the bytes themselves.
//
// As root only (CI runs as root): the run makes user and network namespaces, and runs the command
// as nobody.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { CLI, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-contain-unreachable`;
const QUERY = `${CANARY}-query`;
/** A loopback address of this test's own where nothing listens: every connection to it is refused. */
const CLOSED = `127.${100 + (process.pid % 100)}.8.8`;
const asRoot = process.getuid?.() === 0;

/** The run's lines about a host keyway could not reach. */
const unreachableLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('keyway: upstream_unreachable: '));

describe.skipIf(!asRoot)('keyway run --contain: a host keyway cannot reach is said, to the command and on the run’s stderr (as root only: namespaces)', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'keyway-contain-unreachable-'));
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    proxy = await startProxy({
      env: { API_TOKEN: TOKEN },
      config: {
        proxy: { hosts: { 'api.example.test': CLOSED, 'open.example.test': CLOSED } },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      },
    });
  });
  afterAll(async () => {
    const audit = proxy.auditLines().map((l) => JSON.stringify(l));
    for (const text of [...audit, ...outputs, ...proxy.logs]) {
      expect(findLeak(text, TOKEN)).toBeUndefined();
      expect(text).not.toContain(QUERY);
    }
    await proxy?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  async function contained(command: string[]) {
    const r = await runProcess(
      process.execPath,
      [CLI, 'run', '--contain', '--', ...command],
      { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env },
      undefined,
      60_000,
      workDir,
    );
    // The query string is in the command's own words (curl's arguments): only keyway's lines must not hold it.
    outputs.push(...unreachableLines(r.stderr));
    return r;
  }

  it('curl: a TLS alert for a host no grant covers (refused, and a name that does not resolve), the 502 for a granted one; one line each on stderr', async () => {
    const script = [
      `curl -sS "https://open.example.test/a?token=${QUERY}"; echo "exit $?"`,
      'curl -sS https://open.invalid/b; echo "exit $?"',
      `curl -sS -w "\\n%{http_code}\\n" "https://api.example.test/v1/items?token=${QUERY}"`,
      // Again within the minute: counted, not said again.
      'curl -sS https://open.example.test/again; echo "exit $?"',
    ].join('; ');
    const r = await contained(['sh', '-c', script]);
    expect(r.stdout.match(/^exit \d+$/gm)).toEqual(['exit 35', 'exit 35', 'exit 35']);
    expect(r.stderr).toContain('tlsv1 alert internal error');
    expect(r.stderr).not.toContain('wrong version number');
    expect(r.stdout).toMatch(/"code":"upstream_unreachable".*\n502\n/);
    expect(unreachableLines(r.stderr).sort()).toEqual([
      'keyway: upstream_unreachable: keyway could not reach api.example.test:443 for the command: connection refused',
      'keyway: upstream_unreachable: keyway could not reach open.example.test:443 for the command: connection refused',
      'keyway: upstream_unreachable: keyway could not reach open.invalid:443 for the command: cannot resolve open.invalid',
    ]);
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['code'] === 'upstream_unreachable' && l['via'] === 'contain');
      return found.length >= 4 ? found : undefined;
    }, 'the four audit lines');
    expect(new Set(lines.map((l) => l['host']))).toEqual(new Set(['open.example.test', 'open.invalid', 'api.example.test']));
  });

  it("Node's fetch: the alert's own error code for a tunnelled host, the 502 for a granted one; the lines on stderr", async () => {
    const script = `
      const tried = async (url) => fetch(url).then(async (r) => r.status + ' ' + (await r.text()), (e) => 'failed ' + (e.cause?.code ?? e.message));
      (async () => {
        console.log(await tried('https://open.invalid/x'));
        console.log(await tried('https://api.example.test/v1/node?token=${QUERY}'));
      })();`;
    const r = await contained([process.execPath, '-e', script]);
    const [tunnelled, granted] = r.stdout.trim().split('\n');
    expect(tunnelled, r.stderr).toBe('failed ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR');
    expect(granted).toMatch(/^502 \{"error":\{"code":"upstream_unreachable"/);
    expect(unreachableLines(r.stderr).sort()).toEqual([
      'keyway: upstream_unreachable: keyway could not reach api.example.test:443 for the command: connection refused',
      'keyway: upstream_unreachable: keyway could not reach open.invalid:443 for the command: cannot resolve open.invalid',
    ]);
  });
});
