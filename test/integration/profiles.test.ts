// Profiles (issue 62): `keyway profiles list | show`, a profile of the user's own in keyway's home,
// and `keyway run [--contain] --profile NAME` against a real running keyway and a real HTTPS API that
// checks the key (and refuses the placeholder): the command gets the placeholder in the profile's key
// variable, its env and CA variables, and its state made; keyway puts the real key on the wire.
// Contained (root here, the command as uid 1000 behind SUDO_UID, as on a laptop): the profile's state
// is writable inside, another folder of the home is not, and what it wrote lands on the host.
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cliCommand, runCli, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-profile`;
const PLACEHOLDER = 'keyway-placeholder';
const API_ADDRESS = `127.${100 + (process.pid % 100)}.6.2`;

const PROBE = `description: a probe standing in for a coding agent
command: probe-agent
hosts:
  - { host: api.example.test, why: "its model API", role: model }
  - { host: login.example.test, why: "its login", role: login }
  - { host: telemetry.example.test, why: "telemetry; off with PROBE_TELEMETRY=0", role: off }
state:
  - { path: ~/.probe, kind: folder }
  - { path: ~/.probe.json, kind: file }
keys:
  - { env: PROBE_API_KEY, host: api.example.test }
  - { env: OTHER_API_KEY, host: other.example.test }
env: { PROBE_TELEMETRY: "0", PROBE_HOME: ~/.probe }
pass_env: [PROBE_PASS]
ca: [PROBE_CA_FILE]
`;

describe('profiles', () => {
  let proxy: TestProxy;
  let api: Server;
  const seen: Array<{ path: string; authorized: boolean }> = [];
  const outputs: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'keyway-profiles-test-'));
  const bin = join(work, 'bin');

  beforeAll(async () => {
    // The API checks the real key: the placeholder, or anything else, gets 401.
    api = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      const authorized = req.headers.authorization === `Bearer ${KEY}`;
      seen.push({ path: req.url ?? '', authorized });
      res.writeHead(authorized ? 200 : 401).end(authorized ? 'ok' : 'no');
    });
    api.listen(443, API_ADDRESS);
    await once(api, 'listening');
    proxy = await startProxy({
      env: { API_KEY_SECRET: KEY },
      config: {
        proxy: { hosts: { 'api.example.test': API_ADDRESS, 'other.example.test': API_ADDRESS }, allow_networks: ['127.0.0.0/8'], unmatched: 'deny' },
        grants: {
          api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_KEY_SECRET' },
          // A login the agent makes itself: keyway intercepts its token endpoint's host too (doctor says so).
          'probe-login': {
            type: 'login_capture',
            domains: ['chat.example.test'],
            capture: { endpoints: [{ host: 'login.example.test', path: '/oauth/token' }] },
          },
        },
      },
    });
    mkdirSync(join(proxy.home, 'profiles'));
    writeFileSync(join(proxy.home, 'profiles', 'probe.yaml'), PROBE);
    // The agent: prints what it was given, then calls its API with the key it holds.
    mkdirSync(bin);
    const agent = join(bin, 'probe-agent');
    writeFileSync(
      agent,
      `#!/bin/sh
for v in PROBE_API_KEY OTHER_API_KEY PROBE_TELEMETRY PROBE_HOME PROBE_CA_FILE PROBE_PASS PROBE_DROP; do eval "echo $v=\\\${$v-unset}"; done
curl -sS -H "Authorization: Bearer $PROBE_API_KEY" https://api.example.test/v1/probe
`,
    );
    chmodSync(agent, 0o755);
    chmodSync(work, 0o755);
  });

  afterAll(async () => {
    const audit = proxy === undefined ? '' : readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...(proxy?.logs ?? [])]) expect(findLeak(text, KEY)).toBeUndefined();
    await proxy?.stop();
    api?.close();
    rmSync(work, { recursive: true, force: true });
  });

  async function cli(args: string[], env: Record<string, string> = {}, cwd?: string) {
    const r = await runProcess(
      ...cliCommand(args),
      { PATH: `${bin}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '/tmp', KEYWAY_HOME: proxy.home, ...env },
      undefined,
      30_000,
      cwd,
    );
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  it('list names the three built-ins and the profile of your own; show prints one as YAML', async () => {
    const list = await cli(['profiles', 'list']);
    expect(list.code, list.stderr).toBe(0);
    for (const name of ['claude-code', 'codex', 'gemini-cli', 'probe']) expect(list.stdout).toMatch(new RegExp(`^${name}\\s`, 'm'));
    expect(list.stdout).toContain(join(proxy.home, 'profiles', 'probe.yaml'));
    const json = JSON.parse((await cli(['profiles', 'list', '--json'])).stdout) as Array<{ name: string; source: string }>;
    expect(json.map((p) => p.name)).toEqual(['claude-code', 'codex', 'gemini-cli', 'probe']);
    expect(json[0]).toMatchObject({ name: 'claude-code', source: 'builtin', command: 'claude' });

    const show = await cli(['profiles', 'show', 'claude-code']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^# profile claude-code: built in\n/);
    expect(show.stdout).toContain('command: claude\n');
    expect(show.stdout).toContain('host: api.anthropic.com');
    const own = JSON.parse((await cli(['profiles', 'show', 'probe', '--json'])).stdout) as { profile: { keys: unknown[] } };
    expect(own.profile.keys).toEqual([
      { env: 'PROBE_API_KEY', host: 'api.example.test' },
      { env: 'OTHER_API_KEY', host: 'other.example.test' },
    ]);
  });

  it('a bad profile is one line naming the file and the key, exit 1 for show and list; an unknown name is a usage error', async () => {
    const home = mkdtempSync(join(work, 'home-'));
    mkdirSync(join(home, 'profiles'));
    const bad = join(home, 'profiles', 'bad.yaml');
    writeFileSync(bad, 'command: x\nenv: { NODE_OPTIONS: "--require /tmp/x.js" }\n');
    const show = await runCli(['profiles', 'show', 'bad'], { KEYWAY_HOME: home });
    expect(show.code).toBe(1);
    expect(show.stderr.trim()).toBe(
      `keyway profiles: ${bad}: env.NODE_OPTIONS: it changes what the agent trusts, which code it loads, or where keyway finds its programs and home`,
    );
    const list = await runCli(['profiles', 'list'], { KEYWAY_HOME: home });
    expect(list.code).toBe(1);
    expect(list.stdout).toMatch(/^claude-code\s/m);
    expect(list.stderr).toContain(`${bad}: env.NODE_OPTIONS`);
    const run = await runCli(['run', '--profile', 'bad'], { KEYWAY_HOME: home });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${bad}: env.NODE_OPTIONS`);
    const unknown = await runCli(['run', '--profile', 'nope', '--', 'true'], { KEYWAY_HOME: home });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no profile "nope" (profiles: claude-code, codex, gemini-cli;');
  });

  it("run --profile: the profile's command with its placeholder, env and CA variables, its state made; keyway puts the real key on", async () => {
    const home = mkdtempSync(join(work, 'home-'));
    // The caller's own variables pass (not contained); the real key is nowhere in the caller's shell.
    const r = await cli(['run', '--profile', 'probe'], { HOME: home, PROBE_PASS: 'kept', PROBE_DROP: 'also-kept' });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        `PROBE_API_KEY=${PLACEHOLDER}`,
        // No grant covers other.example.test: no placeholder, so the agent never offers one there.
        'OTHER_API_KEY=unset',
        'PROBE_TELEMETRY=0',
        `PROBE_HOME=${join(home, '.probe')}`,
        `PROBE_CA_FILE=${proxy.bundlePath}`,
        'PROBE_PASS=kept',
        'PROBE_DROP=also-kept',
      ]),
    );
    expect(r.stdout.trimEnd().endsWith('ok')).toBe(true);
    expect(seen.at(-1)).toEqual({ path: '/v1/probe', authorized: true });
    expect(statSync(join(home, '.probe')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, '.probe.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(home, '.probe.json'), 'utf8')).toBe('{}\n');
    expect(r.stderr).toContain(`keyway: made ${join(home, '.probe')} (an empty folder) for the profile: it did not exist yet`);
    // A grant covers its model host: no warning.
    expect(r.stderr).not.toContain('model calls would go without a key');
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v1/probe'), 'the audit line');
    expect(line).toMatchObject({ decision: 'inject', grant: 'api', host: 'api.example.test' });

    // A CMD given runs instead of the profile's command; the state is there now, nothing made.
    const again = await cli(['run', '--profile', 'probe', '--', 'sh', '-c', 'echo "$PROBE_API_KEY"'], { HOME: home });
    expect(again.stdout).toBe(`${PLACEHOLDER}\n`);
    expect(again.stderr).not.toContain('keyway: made');
  });

  it('the API refuses the placeholder: only the key keyway holds gets through', async () => {
    const r = await runProcess(
      'curl',
      [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        TLS_FIXTURES.caPath,
        '--resolve',
        `api.example.test:443:${API_ADDRESS}`,
        '-H',
        `Authorization: Bearer ${PLACEHOLDER}`,
        'https://api.example.test/v1/direct',
      ],
      { PATH: process.env['PATH'] ?? '' },
    );
    expect(r.stdout).toBe('401');
    expect(seen.at(-1)).toEqual({ path: '/v1/direct', authorized: false });
  });

  it("run --contain --profile: the profile's state is keyway's own copy, writable inside, another folder of the home is not, its key a placeholder", async () => {
    // The laptop case: keyway as root behind sudo; the user (uid 1000) owns the home and the project in it.
    const base = mkdtempSync('/var/lib/keyway-profile-contain-');
    const home = join(base, 'home');
    const project = join(home, 'project');
    for (const dir of [home, project, join(home, '.other')]) {
      mkdirSync(dir);
      chownSync(dir, 1000, 1000);
    }
    chmodSync(base, 0o755);
    try {
      const script = [
        'echo inside > "$HOME/.probe/written"',
        '(echo inside > "$HOME/.other/written") 2>/dev/null && echo other-written || echo other-refused',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell line, not a template
        'echo "key=$PROBE_API_KEY pass=${PROBE_PASS-unset} drop=${PROBE_DROP-unset} ca=${PROBE_CA_FILE-unset} telemetry=$PROBE_TELEMETRY"',
        'curl -sS -H "Authorization: Bearer $PROBE_API_KEY" https://api.example.test/v1/contained',
      ].join('; ');
      const r = await cli(
        ['run', '--contain', '--profile', 'probe', '--', 'sh', '-c', script],
        { HOME: home, SUDO_UID: '1000', SUDO_GID: '1000', PROBE_PASS: 'kept', PROBE_DROP: 'dropped', ...proxy.env },
        project,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('model calls would go without a key');
      expect(r.stdout).toContain('other-refused');
      expect(r.stdout).toMatch(new RegExp(`key=${PLACEHOLDER} pass=kept drop=unset ca=/\\S+ telemetry=0`));
      expect(r.stdout.trimEnd().endsWith('ok')).toBe(true);
      expect(seen.at(-1)).toEqual({ path: '/v1/contained', authorized: true });
      // What it wrote in its state is in keyway's kept copy (root's, as keyway's home is), never the person's ~/.probe; nothing in ~/.other.
      const kept = join(proxy.home, 'profiles-state', 'probe', 'local');
      expect(readFileSync(join(kept, '.probe', 'written'), 'utf8')).toBe('inside\n');
      expect(statSync(join(kept, '.probe')).mode & 0o777).toBe(0o700);
      expect(statSync(join(kept, '.probe.json')).mode & 0o777).toBe(0o600);
      expect(() => statSync(join(home, '.probe'))).toThrow();
      expect(() => statSync(join(home, '.other', 'written'))).toThrow();
      expect(r.stderr).toContain(`the contained agent's ${join(home, '.probe')} is keyway's own copy`);
      const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v1/contained'), 'the audit line');
      expect(line).toMatchObject({ decision: 'inject', grant: 'api', via: 'contain' });
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('run --profile, contained or not, says in one line when no grant covers its model host, naming keyway connect', async () => {
    const warning =
      "keyway: warning: no grant covers api.openai.com or chatgpt.com, so codex's model calls would go without a key (it may ask you to log in inside): keyway connect codex";
    const plain = await cli(['run', '--profile', 'codex', '--', 'true'], { HOME: mkdtempSync(join(work, 'home-')) });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr.split('\n')).toContain(warning);
    expect(plain.stderr.split('\n').filter((l) => l.includes('without a key'))).toHaveLength(1);

    const base = mkdtempSync('/var/lib/keyway-profile-nomodel-');
    const home = join(base, 'home');
    const project = join(home, 'project');
    for (const dir of [home, project]) {
      mkdirSync(dir);
      chownSync(dir, 1000, 1000);
    }
    chmodSync(base, 0o755);
    try {
      const contained = await cli(
        ['run', '--contain', '--profile', 'codex', '--', 'true'],
        { HOME: home, SUDO_UID: '1000', SUDO_GID: '1000', ...proxy.env },
        project,
      );
      expect(contained.code, contained.stderr).toBe(0);
      expect(contained.stderr.split('\n')).toContain(warning);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('doctor --profile: each check of a profile that can run, and what is missing for one that cannot', async () => {
    const home = mkdtempSync(join(work, 'home-'));
    const ok = await cli(['doctor', '--profile', 'probe', '--json'], { HOME: home });
    const checks = (JSON.parse(ok.stdout) as { ok: boolean; checks: Array<{ check: string; status: string; detail: string; fix?: string }> }).checks;
    expect(checks.map((c) => [c.check, c.status])).toEqual([
      ['profile probe', 'ok'],
      ['its command (probe-agent)', 'ok'],
      ['its state', 'ok'],
      ['a grant for its model', 'ok'],
      ['the CA variables it reads', 'ok'],
      ['api.example.test (model)', 'ok'],
      ['login.example.test (login)', 'ok'],
      ['telemetry.example.test (off)', 'ok'],
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(checks[2]!.detail).toBe('~/.probe will be made, ~/.probe.json will be made');
    expect(checks[5]!.detail).toBe('intercepted with grant api');
    expect(checks[6]!.detail).toBe('intercepted with grant probe-login');
    expect(checks[7]!.detail).toBe('refused, as it should be (telemetry; off with PROBE_TELEMETRY=0): no grant covers it and proxy.unmatched is deny');
    // doctor makes nothing.
    expect(() => statSync(join(home, '.probe'))).toThrow();
    // codex: not installed here, no grant for its model, and proxy.unmatched deny refuses its hosts.
    const codex = await cli(['doctor', '--profile', 'codex'], { HOME: home, PATH: '/usr/bin:/bin' });
    expect(codex.code).toBe(1);
    expect(codex.stdout).toContain('FAIL  its command (codex): codex is not on PATH');
    expect(codex.stdout).toContain('FAIL  a grant for its model: no grant any agent may use covers api.openai.com');
    expect(codex.stdout).toContain('-> keyway connect codex');
    expect(codex.stdout).toMatch(/WARN {2}api\.openai\.com \(model\): refused: no grant covers it and proxy\.unmatched is deny/);
    expect(codex.stdout).toMatch(/ok {4}ab\.chatgpt\.com \(off\): refused, as it should be/);
    // Where keyway lets such a host through (unmatched: tunnel, the default), it says it cannot tell
    // whether the agent still calls it (issue 86: codex's config.toml switch was made, the warning stayed).
    const tunnelHome = mkdtempSync(join(work, 'tunnel-home-'));
    const tunnelled = await runCli(['doctor', '--profile', 'codex', '--json'], { HOME: home, KEYWAY_HOME: tunnelHome, PATH: '/usr/bin:/bin' });
    const off = (JSON.parse(tunnelled.stdout) as { checks: Array<{ check: string; status: string; detail: string; fix?: string }> }).checks.find(
      (c) => c.check === 'ab.chatgpt.com (off)',
    );
    expect(off).toMatchObject({ status: 'warn', detail: expect.stringContaining('keyway cannot tell'), fix: expect.stringContaining('proxy.unmatched: deny') });
    expect(off!.detail).toContain('[analytics] enabled = false');
  });

  it('a command its contained uid cannot reach (installed under a 0700 folder of root): doctor --profile fails, run --contain refuses before anything', async () => {
    // As root without sudo, the contained command is nobody (65534): root's 0700 folder is closed to it.
    const closed = mkdtempSync(join(tmpdir(), 'keyway-root-only-'));
    const bin = join(closed, 'proj', 'node_modules', '.bin');
    mkdirSync(bin, { recursive: true });
    const real = join(closed, 'proj', 'cli.js');
    writeFileSync(real, '#!/bin/sh\necho "ran as $(id -u)"\n', { mode: 0o755 });
    symlinkSync('../../cli.js', join(bin, 'hidden-agent'));
    chmodSync(closed, 0o700);
    writeFileSync(join(proxy.home, 'profiles', 'hidden.yaml'), 'command: hidden-agent\nstate: [{ path: ~/.hidden, kind: folder }]\n');
    const home = mkdtempSync(join(work, 'home-'));
    const env = { HOME: home, PATH: `${bin}:${process.env['PATH'] ?? ''}` };
    const reason = `hidden-agent resolves to ${real}, which uid 65534 cannot reach (${closed} is 0700)`;
    const fix = 'install it where every user can read it (npm install -g), or run keyway as the user who owns it';
    try {
      const doctor = await cli(['doctor', '--profile', 'hidden'], env, work);
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toContain(`FAIL  its command (hidden-agent): ${reason}`);
      expect(doctor.stdout).toContain(`-> ${fix}`);

      const run = await cli(['run', '--contain', '--profile', 'hidden'], { ...env, ...proxy.env }, work);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`keyway: contain_refused: ${reason}: ${fix}; CMD was not run\n`);
      // Refused before anything: its state is not made, the program never ran.
      expect(() => statSync(join(home, '.hidden'))).toThrow();
      expect(run.stdout).not.toContain('ran as');

      // Run from a folder inside root's, keyway idmaps the closed folders above it to the command's
      // uid (contain/idmapped-folders.ts): the program is reachable then, and runs.
      const inside = await cli(['run', '--contain', '--', 'hidden-agent'], { ...env, ...proxy.env }, join(closed, 'proj'));
      expect(inside.code, inside.stderr).toBe(0);
      expect(inside.stdout).toBe('ran as 65534\n');

      // Readable by every user, the same program passes both.
      chmodSync(closed, 0o755);
      const fine = await cli(['doctor', '--profile', 'hidden', '--json'], env, work);
      const command = (JSON.parse(fine.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks[1]!;
      expect(command).toEqual({
        check: 'its command (hidden-agent)',
        status: 'ok',
        detail: `${join(bin, 'hidden-agent')}, which uid 65534 (the contained command's) can run`,
      });
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });

  it("run --contain --profile refuses a pass_env naming one of keyway's secrets, and makes nothing", async () => {
    const home = mkdtempSync(join(work, 'home-'));
    writeFileSync(join(proxy.home, 'profiles', 'greedy.yaml'), 'command: "true"\nstate: [{ path: ~/.greedy, kind: folder }]\npass_env: [API_KEY_SECRET]\n');
    const r = await cli(['run', '--contain', '--profile', 'greedy'], { HOME: home, ...proxy.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "profile greedy: pass_env API_KEY_SECRET: a secret of keyway's (a config env: reference) is never passed to a contained command",
    );
    expect(() => statSync(join(home, '.greedy'))).toThrow();
  });
});
