import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { canaryLeaks, waitFor } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

// A grant's secret printed by a command (secret: {cmd: …} in the config file): the command is a
// small script this test writes, run as `node SCRIPT` or `sh -c`, that counts its runs in a file.
// A real curl or undici client goes through a real keyway to a loopback upstream that checks the
// credential and refuses a wrong one.

const NODE = process.execPath;
const ADMIN_TOKEN = 'kw-admin-token-canary-3f9a1c2b7d';
// The flaky command's value, echoed to stderr when it fails: never in any output.
const CANARY_FLAKY = 'kw-flaky-canary-52c1e09d';
const CANARY_BASIC = 'kw-basic-canary-0b7d3e11';
const HOSTS = [
  'tok-cmd.example.test',
  'cold-cmd.example.test',
  'fail-cmd.example.test',
  'hang-cmd.example.test',
  'empty-cmd.example.test',
  'big-cmd.example.test',
  'flaky-cmd.example.test',
  'basic-cmd.example.test',
  'envs-cmd.example.test',
  'same-cmd.example.test',
];

describe('a grant secret from a command', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  // The bearer token the upstream takes for tok-cmd.example.test (the command prints token.txt).
  let accepted = CANARY;

  const runs = (name: string) => (existsSync(join(dir, `runs-${name}`)) ? readFileSync(join(dir, `runs-${name}`), 'utf8').length : 0);
  const get = async (host: string, init: { method?: string; body?: string } = {}) => {
    const res = await request(`https://${host}:${upstream.port}/echo`, {
      dispatcher: client,
      method: (init.method ?? 'GET') as 'GET',
      body: init.body,
      headers: { authorization: 'Bearer agent-own-token' },
      signal: AbortSignal.timeout(slack(15_000)),
    });
    const text = await res.body.text();
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };
  const lastLine = (grant: string) =>
    proxy
      .auditLines()
      .filter((l) => l['grant'] === grant)
      .at(-1);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-cmd-'));
    // Prints token.txt (or flaky's value), counting its runs in runs-NAME.
    writeFileSync(
      join(dir, 'print.cjs'),
      `const fs = require('fs'); const [dir, name, file, wait] = process.argv.slice(2);
fs.appendFileSync(dir + '/runs-' + name, 'x');
setTimeout(() => process.stdout.write(fs.readFileSync(dir + '/' + file, 'utf8')), Number(wait || 0));`,
    );
    // Prints its value while mode.txt says ok; else echoes the value to stderr too and fails.
    writeFileSync(
      join(dir, 'flaky.cjs'),
      `const fs = require('fs'); const dir = process.argv[2];
fs.appendFileSync(dir + '/runs-flaky', 'x');
process.stdout.write('${CANARY_FLAKY}\\n');
if (fs.readFileSync(dir + '/mode.txt', 'utf8') !== 'ok') { process.stderr.write('\\nerror: session for ${CANARY_FLAKY} expired; sign in again\\nmore\\n'); process.exit(4); }`,
    );
    writeFileSync(join(dir, 'token.txt'), `${CANARY}\n`);
    writeFileSync(join(dir, 'mode.txt'), 'ok');
    writeFileSync(join(dir, 'same.txt'), 'same-token-never-taken');
    writeFileSync(join(dir, 'basic.json'), JSON.stringify({ username: 'robot', password: CANARY_BASIC }));
    upstream = await startUpstream({
      authorize: async (authorization) =>
        authorization === `Bearer ${accepted}` ||
        authorization === `Bearer ${CANARY_FLAKY}` ||
        authorization === `Basic ${Buffer.from(`robot:${CANARY_BASIC}`).toString('base64')}` ||
        (authorization?.startsWith('Bearer env-') ?? false),
    });
    const printer = (name: string, file: string, wait = 0) => [NODE, join(dir, 'print.cjs'), dir, name, file, String(wait)];
    const config = {
      proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ...HOSTS].map((h) => [h, '127.0.0.1'])) },
      grants: {
        tok: { type: 'bearer', domains: ['tok-cmd.example.test'], secret: { cmd: printer('tok', 'token.txt'), cache: '1h' } },
        cold: { type: 'bearer', domains: ['cold-cmd.example.test'], secret: { cmd: printer('cold', 'token.txt', 300) } },
        fail: { type: 'bearer', domains: ['fail-cmd.example.test'], secret: { cmd: ['sh', '-c', 'echo "vault: permission denied" >&2; exit 3'] } },
        // The sleep is the shell's child: killed with the process group. Its pid is written to hang.pid.
        hang: {
          type: 'bearer',
          domains: ['hang-cmd.example.test'],
          secret: { cmd: ['sh', '-c', `sleep 30 & echo $! > ${dir}/hang.pid; wait`], timeout: '2s' },
        },
        empty: { type: 'bearer', domains: ['empty-cmd.example.test'], secret: { cmd: ['sh', '-c', 'echo "   "'] } },
        big: { type: 'bearer', domains: ['big-cmd.example.test'], secret: { cmd: [NODE, '-e', 'process.stdout.write("a".repeat(70000))'] } },
        flaky: { type: 'bearer', domains: ['flaky-cmd.example.test'], secret: { cmd: [NODE, join(dir, 'flaky.cjs'), dir], cache: '1s' } },
        basic: { type: 'basic', domains: ['basic-cmd.example.test'], secret: { cmd: printer('basic', 'basic.json') } },
        // Prints which of these variables it was given (a name, or -).
        envs: {
          type: 'bearer',
          domains: ['envs-cmd.example.test'],
          secret: {
            cmd: [
              NODE,
              '-e',
              'process.stdout.write("env-" + ["KEYWAY_MASTER_KEY", "KEYWAY_ADMIN_TOKEN", "REF_SECRET", "KEEP_ME"].map((n) => (n in process.env ? n : "-")).join("."))',
            ],
          },
        },
        // A command whose value the upstream never takes: a 401 runs it again once, then the 401 goes to the client.
        gone: { type: 'bearer', domains: ['gone-cmd.example.test'], secret: { cmd: printer('gone', 'missing.txt') } },
        same: { type: 'bearer', domains: ['same-cmd.example.test'], secret: { cmd: printer('same', 'same.txt') } },
        ref: { type: 'bearer', domains: ['other.example.test'], secret: 'env:REF_SECRET' },
      },
    };
    proxy = await startProxy({
      config,
      env: { REF_SECRET: 'ref-secret-value', KEEP_ME: '1', KEYWAY_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    // Given by the environment, keyway writes no token file; the test's admin client reads one.
    writeFileSync(join(proxy.home, 'data', 'admin.token'), ADMIN_TOKEN);
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 250 });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('curl gets the command output injected; the second request uses the cache', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const results = [];
    for (let i = 0; i < 2; i++) {
      const result = await runProcess(
        'curl',
        ['-sS', '-w', '\n%{http_code}', '-H', 'Authorization: Bearer agent-own', `https://tok-cmd.example.test:${upstream.port}/echo`],
        env,
      );
      expect(result.stdout.trim().split('\n').at(-1)).toBe('200');
      results.push(result.stdout, result.stderr);
    }
    expect(upstream.seen.filter((s) => s.headers.authorization === `Bearer ${CANARY}`)).toHaveLength(2);
    expect(runs('tok')).toBe(1);
    await waitFor(() => lastLine('tok') !== undefined);
    expect(lastLine('tok')).toMatchObject({ decision: 'inject', status: 200, secret_source: 'cmd' });
    expect(canaryLeaks(proxy, ...results)).toEqual([]);
  });

  it('200 concurrent requests on a cold cache run the command once', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => get('cold-cmd.example.test')));
    expect(answers.map((a) => a.status)).toEqual(Array(200).fill(200));
    expect(runs('cold')).toBe(1);
  });

  it('an upstream 401 runs the command again once and replays the request (a POST body too) with the new value', async () => {
    accepted = 'kw-rotated-token-9d2e';
    writeFileSync(join(dir, 'token.txt'), accepted);
    const before = runs('tok');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get('tok-cmd.example.test', { method: 'POST', body: `{"n":${i}}` })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(runs('tok') - before).toBe(1);
    const echoed = JSON.parse(answers[0]!.text) as { body?: string };
    expect(echoed.body).toMatch(/^\{"n":\d+\}$/);
    await waitFor(() => proxy.auditLines().filter((l) => l['grant'] === 'tok').length >= 2 + 20);
    const replayed = proxy.auditLines().filter((l) => l['grant'] === 'tok' && l['replayed'] === true);
    expect(replayed.length).toBeGreaterThan(0);
    expect(replayed[0]).toMatchObject({ status: 200, secret_source: 'cmd', refreshed: true });
    // The upstream refused the old token: the check is real.
    expect(upstream.seen.some((s) => s.headers.authorization === `Bearer ${CANARY}` && s.method === 'POST')).toBe(true);
  });

  it('a 401 on a value the command prints again: it runs once more, and the upstream 401 reaches the client without a replay', async () => {
    const first = await get('same-cmd.example.test');
    expect(first.status).toBe(401);
    expect(first.text).toBe('{"error":"invalid_token"}');
    expect(runs('same')).toBe(2);
    expect(upstream.seen.filter((s) => s.headers.host?.startsWith('same-cmd.example.test'))).toHaveLength(1);
    await waitFor(() => lastLine('same') !== undefined);
    expect(lastLine('same')).toMatchObject({
      status: 401,
      refreshed: true,
      replay: 'skipped: the secret command printed the same value',
      secret_source: 'cmd',
    });
    expect(lastLine('same')?.['replayed']).toBeUndefined();
    // An agent that sends many at once, each refused: at most one run more between them (none
    // within a second of the last: a run after a 401 that printed the same value is trusted that long).
    const burst = await Promise.all(Array.from({ length: 10 }, () => get('same-cmd.example.test')));
    expect(burst.map((a) => a.status)).toEqual(Array(10).fill(401));
    expect(runs('same')).toBeLessThanOrEqual(3);
  });

  it('a burst of requests on a failing command starts it once: the failure is remembered for a second', async () => {
    const burst = await Promise.all(Array.from({ length: 30 }, () => get('gone-cmd.example.test')));
    expect(new Set(burst.map((a) => `${a.status} ${a.code}`))).toEqual(new Set(['502 secret_unavailable']));
    for (let i = 0; i < 10; i++) expect((await get('gone-cmd.example.test')).status).toBe(502);
    expect(runs('gone')).toBe(1);
    expect(JSON.parse(burst[0]!.text).error.message).toMatch(/^grant "gone": its secret command \(.*node\) exited with status 1: /);
  });

  it('a command that fails, hangs, prints nothing or too much: 502 secret_unavailable, saying why', async () => {
    const fail = await get('fail-cmd.example.test');
    expect(fail).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(JSON.parse(fail.text).error.message).toBe('grant "fail": its secret command (sh) exited with status 3: vault: permission denied');
    await waitFor(() => lastLine('fail') !== undefined);
    expect(lastLine('fail')).toMatchObject({ decision: 'error', code: 'secret_unavailable', status: 502, secret_source: 'cmd' });

    const empty = await get('empty-cmd.example.test');
    expect(empty).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(JSON.parse(empty.text).error.message).toBe('grant "empty": its secret command (sh) printed nothing');

    const big = await get('big-cmd.example.test');
    expect(big).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(JSON.parse(big.text).error.message).toContain('printed more than 64 KiB');
    expect(big.text).not.toContain('aaaa');
  });

  it('a hanging command is killed with its process group at its timeout, and other grants are served meanwhile', async () => {
    // Served meanwhile: answered while the hanging command still runs (an order of events, not a
    // time, which a busy machine stretches).
    let hangAnswered = false;
    const hanging = get('hang-cmd.example.test').finally(() => {
      hangAnswered = true;
    });
    const other = await get('tok-cmd.example.test');
    expect(other.status).toBe(200);
    expect(hangAnswered).toBe(false);
    const hang = await hanging;
    expect(hang).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(JSON.parse(hang.text).error.message).toBe('grant "hang": its secret command (sh) timed out after 2s');
    const pid = Number(readFileSync(join(dir, 'hang.pid'), 'utf8'));
    // Killed: gone, or a zombie (state Z) that this machine's pid 1 has not reaped.
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(await waitFor(() => !alive(), slack(1_000)), 'the sleep the command started').toBe(true);
  });

  it('a command that fails after a good run: the old value is not used past its cache, and its stderr echo is scrubbed', async () => {
    expect((await get('flaky-cmd.example.test')).status).toBe(200);
    writeFileSync(join(dir, 'mode.txt'), 'fail');
    await new Promise((r) => setTimeout(r, 1_100)); // cache: 1s
    const sentBefore = upstream.seen.length;
    const failed = await get('flaky-cmd.example.test');
    expect(failed).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect(upstream.seen.length).toBe(sentBefore);
    expect(JSON.parse(failed.text).error.message).toBe(
      'grant "flaky": its secret command (flaky.cjs) exited with status 4: error: session for [redacted] expired; sign in again'.replace(
        '(flaky.cjs)',
        `(${NODE})`,
      ),
    );
    const leaks = [failed.text, proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')].filter((t) => t.includes(CANARY_FLAKY));
    expect(leaks).toEqual([]);
  });

  it('basic material as JSON, read as `keyway secrets set` reads it', async () => {
    const answer = await get('basic-cmd.example.test');
    expect(answer.status).toBe(200);
    expect(answer.text).not.toContain(CANARY_BASIC);
  });

  it("the command does not get keyway's own secrets in its environment; other variables pass", async () => {
    expect((await get('envs-cmd.example.test')).status).toBe(200);
    const seen = upstream.seen.filter((s) => s.headers.host?.startsWith('envs-cmd.example.test')).at(-1);
    expect(seen?.headers.authorization).toBe('Bearer env--.-.-.KEEP_ME');
  });

  it('listings say the secret comes from a command, naming the program and never its arguments', async () => {
    const cli = await proxy.cli(['grants', 'list', '--json']);
    expect(cli.code).toBe(0);
    const rows = JSON.parse(cli.stdout) as Array<{ id: string; secret_from: string }>;
    expect(rows.find((r) => r.id === 'tok')?.secret_from).toBe(`cmd: ${NODE}`);
    expect(rows.find((r) => r.id === 'ref')?.secret_from).toBe('env:REF_SECRET');
    const api = await adminClient(proxy).call('GET', '/api/grants');
    const text = api.text + cli.stdout;
    expect(text).toContain('"secret_from":"cmd: sh"');
    expect(text).not.toContain('print.cjs');
    expect(text).not.toContain('permission denied');
    const shown = await proxy.cli(['grants', 'show', 'tok']);
    expect(shown.stdout).toMatch(/Secret:\s+printed by the command .*node/);
    expect(canaryLeaks(proxy, api.text, cli.stdout, shown.stdout)).toEqual([]);
  });

  it('the admin API and `keyway secrets set` refuse a command reference', async () => {
    const admin = adminClient(proxy);
    const created = await admin.call('POST', '/api/grants', {
      id: 'planted',
      type: 'bearer',
      domains: ['plain.example.test'],
      secret: { cmd: ['sh', '-c', 'id'] },
    });
    expect(created.status).toBe(400);
    expect((created.body as { error: { message: string } }).error.message).toContain('only be set in the config file');
    expect((await admin.call('POST', '/api/grants', { id: 'planted', type: 'bearer', domains: ['plain.example.test'] })).status).toBe(201);
    const put = await admin.call('PUT', '/api/grants/planted/secret', { secret: { cmd: ['sh', '-c', 'id'] } });
    expect(put.status).toBe(400);
    expect((put.body as { error: { message: string } }).error.message).toContain('only be set in the config file');
    const patch = await admin.call('PATCH', '/api/grants/planted', { secret: { cmd: ['sh', '-c', 'id'] } });
    expect(patch.status).toBe(400);
    const cli = await proxy.cli(['secrets', 'set', 'planted', '--value', '{"cmd": ["sh", "-c", "id"]}']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('only be set in the config file');
    const stdin = await proxy.cli(['secrets', 'set', 'planted', '--stdin'], '{"cmd":["touch","/tmp/x"]}\n');
    expect(stdin.code).not.toBe(0);
  });

  it('a reload that changes a command drops its cache; one that keeps it keeps the value', async () => {
    const before = runs('tok');
    expect((await proxy.running.reload()).reloaded).toBe(true);
    expect((await get('tok-cmd.example.test')).status).toBe(200);
    expect(runs('tok')).toBe(before);
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const written = parse(readFileSync(file, 'utf8')) as { grants: Record<string, { secret: { cmd: string[] } }> };
    const tok = written.grants['tok']!.secret;
    tok.cmd = [...tok.cmd.slice(0, -1), '1']; // the same script, waiting 1 ms: a changed command
    writeFileSync(file, stringify(written));
    const outcome = await proxy.running.reload();
    expect(outcome).toMatchObject({ reloaded: true });
    expect((await get('tok-cmd.example.test')).status).toBe(200);
    expect(runs('tok')).toBe(before + 1);
  });
});
