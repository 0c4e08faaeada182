// Issue 60, the command line as a newcomer meets it: global options (--home, --config, --json) work
// before the command as after it (`service install` prints `keyway --home DIR grants add …`), and a
// word a command does not take is refused with a guess, never ignored. The real CLI in a child
// process; `status` against a real running keyway.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';

const MASTER_KEY = randomBytes(32).toString('base64');

describe('global options before the command', () => {
  let proxy: TestProxy;

  beforeAll(async () => {
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  /** The CLI with no KEYWAY_HOME: only --home says which home. */
  const cli = (args: string[]) => runCli(args, { ...proxy.env, HOME: makeHome() });

  it('keyway --json status and keyway --home DIR status read the running keyway of that home', async () => {
    for (const args of [
      ['--home', proxy.home, '--json', 'status'],
      ['--json', '--home', proxy.home, 'status'],
      [`--home=${proxy.home}`, 'status', '--json'],
    ]) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ running: true, home: proxy.home, pid: process.pid });
    }
    const text = await cli(['--home', proxy.home, 'status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`home      ${proxy.home}`);
  });

  it('keyway --home DIR grants add …, as `service install` prints it, writes to that home', async () => {
    const home = makeHome();
    const env = { HOME: makeHome(), KEYWAY_MASTER_KEY: MASTER_KEY };
    const added = await runCli(['--home', home, 'grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin'], env, 'x');
    expect(added.code, added.stderr).toBe(0);
    const listed = await runCli(['grants', 'list', '--json', '--home', home], env);
    expect(JSON.parse(listed.stdout).map((g: { id: string }) => g.id)).toEqual(['gh']);
  });

  it('--config before the command is the config that is read', async () => {
    const home = makeHome();
    mkdirSync(join(home, 'other'));
    writeFileSync(join(home, 'other', 'bad.yaml'), 'proxy:\n  listn: 127.0.0.1:1\n');
    const r = await runCli(['--home', home, '--config', 'other/bad.yaml', 'grants', 'list'], { HOME: home, KEYWAY_MASTER_KEY: MASTER_KEY });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('proxy.listn: unknown key; did you mean listen?');
  });

  it('an unknown option before the command is named as one, with a guess', async () => {
    const r = await cli(['--hmoe', proxy.home, 'status']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('keyway: unknown option "--hmoe" before the command: did you mean "--home"? (see keyway --help)');
  });
});

describe('a word a command does not take', () => {
  let home: string;
  const cli = (args: string[]) => runCli(args, { KEYWAY_HOME: home, HOME: home, KEYWAY_MASTER_KEY: MASTER_KEY });

  beforeAll(() => {
    home = makeHome();
  });

  // One test per command: each is a child process, slow on a busy machine.
  it.each([
    [['status', 'jsn'], 'keyway status: unexpected word "jsn"; did you mean "--json"? (see --help)'],
    [['doctor', 'now'], 'keyway doctor: unexpected word "now" (see --help)'],
    [['env', 'agent', 'x'], 'keyway env: unexpected word "agent"; did you mean "--agent"? (see --help)'],
    [['ca', 'pem'], 'keyway ca: unknown subcommand "pem" (expected one of: import)'],
    [['init', 'here'], 'keyway init: unexpected word "here" (see --help)'],
    [['stop', 'all'], 'keyway stop: unexpected word "all"; did you mean "--all"? (see --help)'],
    [['reload', 'now'], 'keyway reload: unexpected word "now" (see --help)'],
    [['start', 'now'], 'keyway start: unexpected word "now" (see --help)'],
    [['run', '--agent', 'a', 'stray', '--', 'true'], 'keyway run: unexpected word "stray" (see --help)'],
  ] as const)('is refused by a command that takes none, with the option it may have meant: %j', async (args, line) => {
    const r = await cli([...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(line);
  });

  it.each([
    [['agents', 'list', 'x'], 'keyway agents: unexpected word "x" after "list" (see --help)'],
    [['agents', 'lease', 'a', 'g', 'x'], 'keyway agents: unexpected word "x" after "lease a g" (see --help)'],
    [['grants', 'show', 'gh', 'x'], 'keyway grants: unexpected word "x" after "show gh" (see --help)'],
    [['audit', 'verify', 'x'], 'keyway audit: unexpected word "x" after "verify" (see --help)'],
    [['key', 'status', 'x'], 'keyway key: unexpected word "x" after "status" (see --help)'],
    [['store', 'migrate', 'x'], 'keyway store: unexpected word "x" after "migrate" (see --help)'],
    [['approvals', 'list', 'x'], 'keyway approvals: unexpected word "x" after "list" (see --help)'],
    [['secrets', 'set', 'gh', 'x'], 'keyway secrets: unexpected word "x" after "set gh" (see --help)'],
    [['refresh', 'gh', 'x'], 'keyway refresh: unexpected word "x" after "gh" (see --help)'],
    [['revoke', 'gh', 'x'], 'keyway revoke: unexpected word "x" after "gh" (see --help)'],
    // The stray word is not repeated: after connect's one name, it is most likely a key typed in the wrong place.
    [
      ['connect', 'github', 'x'],
      'keyway connect: connect takes one name (a provider or an agent); a key or secret is read from stdin, never from the command line',
    ],
    [['completion', 'bash', 'x'], 'keyway completion: unexpected word "x" after "bash" (see --help)'],
    [['fetch', 'https://a.example.test/', 'x'], 'keyway fetch: unexpected word "x" after "https://a.example.test/" (see --help)'],
    [['contain', 'review', 'id', 'x'], 'keyway contain: unexpected word "x" after "review id" (see --help)'],
    [
      ['oauth', 'client-metadata', 'https://a.example.test/m', 'x'],
      'keyway oauth: unexpected word "x" after "client-metadata https://a.example.test/m" (see --help)',
    ],
    [['service', 'status', 'x'], 'keyway service: unexpected word "x" after "status" (see --help)'],
  ] as const)('is refused after a subcommand that takes fewer: %j', async (args, line) => {
    const r = await cli([...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(line);
  });

  it('`ca rotate`, which does not exist, is an unknown subcommand (exit 2), never the old CA printed', async () => {
    const r = await cli(['ca', 'rotate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('keyway ca: unknown subcommand "rotate" (expected one of: import)');
    const near = await cli(['ca', 'imprt', 'a', 'b']);
    expect(near.stderr.trim()).toBe('keyway ca: unknown subcommand "imprt": did you mean "import"? (expected one of: import)');
  });
});
