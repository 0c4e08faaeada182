import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitRunArgs } from '../../src/cli/commands/env.ts';
import { userPath } from '../../src/cli/user-node.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cliShellLine, makeHome, runCli, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// `keyway env` and `keyway run` as a user meets them: a real token already in the shell, a home
// with no CA yet, `run curl -sS …` without `--`, and a node on PATH too old to honour HTTPS_PROXY.

const REAL_TOKEN = 'ghp_users-own-token-kept';
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

let upstream: TestUpstream;
let proxy: TestProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  proxy = await startProxy({
    grants: [
      { id: 'github', type: 'bearer', domains: ['api.github.com'], secret: CANARY },
      { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

describe('keyway env', () => {
  it('keeps a variable already set in the shell instead of printing a placeholder over it', async () => {
    // What the user types: eval "$(keyway env)" in a shell that has its own GITHUB_TOKEN.
    const script = `eval "$(${cliShellLine(['env'])})"; printf '%s|%s|%s' "$GITHUB_TOKEN" "$GH_TOKEN" "$HTTPS_PROXY"`;
    const r = await runProcess('bash', ['-c', script], {
      PATH: SYSTEM_PATH,
      HOME: proxy.home,
      KEYWAY_HOME: proxy.home,
      ...proxy.env,
      GITHUB_TOKEN: REAL_TOKEN,
    });
    expect(r.code, r.stderr).toBe(0);
    const [github, gh, httpsProxy] = r.stdout.split('|');
    expect(github).toBe(REAL_TOKEN);
    // Shaped like a GitHub token: recent gh refuses one that is not (issue 86).
    expect(gh).toBe('ghp_keywayplaceholder0000000000000000000');
    expect(gh).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
    expect(httpsProxy).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(r.stderr).toContain('GITHUB_TOKEN already set in your environment: kept as it is');
    expect(r.stderr).not.toContain(REAL_TOKEN);

    const json = await proxy.cli(['env', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ GITHUB_TOKEN: 'ghp_keywayplaceholder0000000000000000000' });
    expect(json.stdout + json.stderr).not.toContain(CANARY);
  });

  it('refuses on a home with no CA, saying to run keyway init or start, and creates nothing', async () => {
    const home = makeHome();
    const env = { KEYWAY_HOME: home, HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    for (const args of [['env'], ['env', '--json'], ['run', '--', 'true']]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/no CA yet in .*certs.*run `keyway init` or `keyway start`/);
    }
    expect(existsSync(join(home, 'certs'))).toBe(false);
    expect(existsSync(join(home, 'data'))).toBe(false);
    const init = await runCli(['init'], env);
    expect(init.code, init.stderr).toBe(0);
    const after = await runCli(['env'], env);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain(`export NODE_EXTRA_CA_CERTS='${join(home, 'certs', 'ca.pem')}'`);
  });
});

describe('keyway run without --', () => {
  it('passes the options after the command to it: keyway run curl -sS … goes through keyway', async () => {
    const before = upstream.seen.length;
    const r = await proxy.cli([
      'run',
      'curl',
      '-q',
      '-sS',
      '--max-time',
      '10',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://api.example.test:${upstream.port}/echo`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('200');
    expect(upstream.seen.length).toBe(before + 1);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
  });

  it('a mistyped --agent is said not to exist, with the nearest name, for run, env and run --contain', async () => {
    const add = await proxy.cli(['agents', 'add', 'claude']);
    expect(add.code, add.stderr).toBe(0);
    for (const args of [
      ['run', '--agent', 'claud', '--', 'true'],
      ['env', '--agent', 'claud'],
      ['run', '--contain', '--agent', 'claud', '--', 'true'],
    ]) {
      const r = await proxy.cli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain('no agent "claud"; did you mean claude? (agents: claude)');
      expect(r.stderr).not.toContain('KEYWAY_AGENT_KEY');
    }
    // agents show says the same (issue 48).
    const show = await proxy.cli(['agents', 'show', 'claud']);
    expect(show.code).not.toBe(0);
    expect(show.stderr).toContain('no agent "claud"; did you mean claude? (agents: claude)');
    expect((await proxy.cli(['agents', 'rm', 'claude'])).code).toBe(0);
  });

  it('leaves --help after the command to the command', async () => {
    const r = await proxy.cli(['run', 'sh', '-c', 'echo "got $0"', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('got --help');
    const own = await proxy.cli(['run', '--help']);
    expect(own.stdout).toContain(
      'keyway run [--agent ID | --identity-token FILE] [--delegate [--grants G,…] [--ttl D]] [--profile NAME] [--contain [--port N…] [--env NAME…] [--allow-read PATH…] [--allow-write PATH…] [--allow-socket PATH…] [--outside-home]] [--] CMD',
    );
  });

  it('splits keyway options from the command at the first word that is not an option', () => {
    expect(splitRunArgs(['curl', '-sS', 'https://x.test'])).toEqual({ own: [], command: ['curl', '-sS', 'https://x.test'] });
    expect(splitRunArgs(['--agent', 'a1', '--json', 'curl', '-v'])).toEqual({ own: ['--agent', 'a1', '--json'], command: ['curl', '-v'] });
    expect(splitRunArgs(['--home=/h', 'git', '--version'])).toEqual({ own: ['--home=/h'], command: ['git', '--version'] });
    expect(splitRunArgs(['--agent', 'a1', '--', '-weird', '--agent'])).toEqual({ own: ['--agent', 'a1'], command: ['-weird', '--agent'] });
    // --contain's options that take a value: the value is not the command.
    expect(splitRunArgs(['--contain', '--port', '8443', '--allow-write', '/w', 'curl', '-v'])).toEqual({
      own: ['--contain', '--port', '8443', '--allow-write', '/w'],
      command: ['curl', '-v'],
    });
  });
});

describe('a node on PATH older than 24', () => {
  let bin: string;
  let oldPath: string;
  let newPath: string;

  beforeAll(() => {
    bin = makeHome();
    const fakeNode = (dir: string, version: string) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'node'), `#!/bin/sh\necho ${version}\n`);
      chmodSync(join(dir, 'node'), 0o755);
    };
    // npm's node_modules/.bin comes first with a new node; the user's own node is old.
    fakeNode(join(bin, 'project', 'node_modules', '.bin'), 'v24.1.0');
    fakeNode(join(bin, 'old'), 'v20.11.1');
    fakeNode(join(bin, 'new'), 'v24.1.0');
    oldPath = `${join(bin, 'project', 'node_modules', '.bin')}:${join(bin, 'old')}:${SYSTEM_PATH}`;
    newPath = `${join(bin, 'new')}:${SYSTEM_PATH}`;
  });

  it('makes run warn, with the fix, when the command runs on node', async () => {
    const r = await runCli(['run', 'node', '-e', '1'], { KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: oldPath });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`the node on your PATH (${join(bin, 'old', 'node')}) is Node v20.11.1, which ignores HTTPS_PROXY`);
    expect(r.stderr).toContain('Node 24 or later');
    // A node script found by its #! line counts too; a shell command does not.
    const script = join(bin, 'agent-tool');
    writeFileSync(script, '#!/usr/bin/env node\nconsole.log(1)\n');
    chmodSync(script, 0o755);
    expect((await runCli(['run', script], { KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: oldPath })).stderr).toContain('ignores HTTPS_PROXY');
    expect((await runCli(['run', 'sh', '-c', 'true'], { KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: oldPath })).stderr).toBe('');
    expect((await runCli(['run', 'node', '-e', '1'], { KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: newPath })).stderr).toBe('');
    // The node the command names, not the PATH's (issue 48): a new one named is fine beside an old PATH,
    // an old one named is warned about beside a new PATH; a #! line naming a node by path counts too.
    const env = (path: string) => ({ KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: path });
    expect((await runCli(['run', join(bin, 'new', 'node'), '-e', '1'], env(oldPath))).stderr).toBe('');
    const named = await runCli(['run', join(bin, 'old', 'node'), '-e', '1'], env(newPath));
    expect(named.stderr).toContain(`the node the command runs (${join(bin, 'old', 'node')}) is Node v20.11.1, which ignores HTTPS_PROXY`);
    const pinned = join(bin, 'pinned-tool');
    writeFileSync(pinned, `#!${join(bin, 'new', 'node')}\nconsole.log(1)\n`);
    chmodSync(pinned, 0o755);
    expect((await runCli(['run', pinned], env(oldPath))).stderr).toBe('');
  });

  it('makes doctor warn about it, without failing on it', async () => {
    const check = async (path: string) => {
      const r = await runCli(['doctor', '--json'], { KEYWAY_HOME: proxy.home, HOME: proxy.home, ...proxy.env, PATH: path });
      const checks = (JSON.parse(r.stdout) as { checks: Array<{ check: string; status: string; detail: string; fix?: string }> }).checks;
      return checks.find((c) => c.check === 'node on your PATH');
    };
    const old = await check(oldPath);
    expect(old).toMatchObject({ status: 'warn', detail: expect.stringContaining('v20.11.1'), fix: expect.stringContaining('Node 24 or later') });
    expect(old?.detail).toContain(join(bin, 'old', 'node'));
    expect(await check(newPath)).toMatchObject({ status: 'ok', detail: expect.stringContaining('v24.1.0') });
  });

  it('looks past node_modules/.bin entries on PATH', () => {
    expect(userPath('/a/node_modules/.bin:/usr/bin:/b/node_modules/.bin/::/bin')).toBe('/usr/bin:/bin');
  });
});

describe('env and run with agents configured and no --agent', () => {
  const AGENT_KEY = 'bot-key-0123456789abcdef';
  const NO_AGENT =
    'agents are configured, so requests without agent credentials get 407 proxy_auth_required: pass --agent ID to keyway %s, ' +
    'its key in KEYWAY_AGENT_KEY (or, for an agent in the config, read from its reference)';
  const line = (command: string) => `keyway: warning: ${NO_AGENT.replace('%s', command)}\n`;
  let withAgents: TestProxy;
  let cli: (args: string[], env?: Record<string, string>) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    withAgents = await startProxy({
      env: { BOT_KEY: AGENT_KEY },
      config: { agents: { bot: { key: 'env:BOT_KEY', grants: ['api'] } } },
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
    cli = (args, env = {}) => runCli(args, { KEYWAY_HOME: withAgents.home, HOME: withAgents.home, ...withAgents.env, ...env });
  });
  afterAll(async () => {
    await withAgents?.stop();
  });

  it('env says on stderr that requests will get 407 and how to pass the agent; stdout stays eval-able', async () => {
    const r = await cli(['env']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(line('env'));
    expect(r.stdout).toContain(`export HTTPS_PROXY='http://127.0.0.1:${withAgents.port}'`);
    const named = await cli(['env', '--agent', 'bot'], { KEYWAY_AGENT_KEY: AGENT_KEY });
    expect(named.code, named.stderr).toBe(0);
    expect(named.stderr).toBe('');
  });

  it('run says it too, and the request it warned of does get 407', async () => {
    const url = `https://api.example.test:${upstream.port}/echo`;
    const r = await cli(['run', 'curl', '-q', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url]);
    expect(r.stderr).toContain(line('run'));
    expect(r.stdout).toBe('000'); // curl reports the refused CONNECT as no HTTP answer
    expect(r.stderr).toMatch(/CONNECT tunnel failed, response 407/);
    const named = await cli(['run', '--agent', 'bot', 'curl', '-q', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url], {
      KEYWAY_AGENT_KEY: AGENT_KEY,
    });
    expect(named.stderr).toBe('');
    expect(named.stdout).toBe('200');
    expect(r.stdout + r.stderr + named.stdout + named.stderr).not.toContain(CANARY);
    // A wrong key: said before the command runs, naming the agent and where its key came from (issue
    // 86: curl's bare "response 407" was all there was); the command is not run, the key not repeated.
    const wrong = await cli(['run', '--agent', 'bot', 'curl', '-q', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url], {
      KEYWAY_AGENT_KEY: 'not-bots-key-0000000000',
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toContain("keyway: proxy_auth_required: the running keyway refused agent bot's key (from KEYWAY_AGENT_KEY)");
    expect(wrong.stderr).toContain('curl was not run');
    expect(wrong.stderr).not.toContain('not-bots-key');
  });

  it('counts agents added with `keyway agents add` (in the store), and run warns when no proxy runs for the home', async () => {
    const home = makeHome();
    const env = { KEYWAY_HOME: home, HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    expect((await runCli(['init'], env)).code).toBe(0);
    const before = await runCli(['run', '--', 'true'], env);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stderr).toBe(
      `keyway: warning: no keyway proxy is running for ${home}, so true's requests through it will fail to connect: start one with \`keyway start\` (same home) first\n`,
    );
    const added = await runCli(['agents', 'add', 'bot'], env);
    expect(added.code, added.stderr).toBe(0);
    const envLine = await runCli(['env'], env);
    expect(envLine.stderr).toBe(line('env'));
    const run = await runCli(['run', '--', 'true'], env);
    expect(run.stderr.split('\n')).toEqual([line('run').trimEnd(), expect.stringContaining('no keyway proxy is running'), '']);
  });
});
