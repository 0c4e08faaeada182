// `keyway connect claude-code --login` cut short, with the real Claude Code CLI (@anthropic-ai/claude-code,
// a devDependency) at its "Paste code here if prompted" prompt, as a new user met it (issue 86): a
// terminal's Ctrl-C, and a SIGTERM to keyway connect itself. Run on a pseudo-terminal (script(1)),
// since claude asks for the code only on one, against a running keyway that maps Anthropic's hosts to
// a loopback stand-in on port 443 (proxy.unmatched: deny). What it must leave: the user's home as it
// was (claude's login writes ~/.claude.json, ~/.claude/backups and ~/.claude/telemetry when run in
// it), nothing in the temporary folder, not one request through keyway during the login (claude's
// telemetry and the rest, off by the profile's switches), the grant holding no login with `grants
// list` and `doctor` saying what fills it, and a line on exit saying the same. Then the grant is
// filled (--import, no --replace) and claude runs through keyway, uncontained with the profile and
// contained, answering without "Claude configuration file not found" (what a login run in the home
// made the next run with CLAUDE_CONFIG_DIR=~/.claude print). Needs root or unprivileged user
// namespaces (CI runs as root): the stand-in listens on port 443, and the last run is contained.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, type AgentWorld, builtinProfile, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { cliCommand, cliShellLine, runProcess } from '../../helpers/keyway.ts';
import { anthropicHandler } from '../../helpers/model-standins/anthropic.ts';
import { tokenEndpoint } from '../../helpers/model-standins/token-endpoint.ts';
import { waitFor } from '../../helpers/wait.ts';

const HOSTS = ['api.anthropic.com', 'platform.claude.com'];
const CLIENT_ID = '9d1c250a-e61b-44d9-88ed-5944d1962f5e';
const PROMPT = 'Paste code here if prompted';
const NOT_FOUND = 'configuration file not found';
// The CLI takes 2–4 s to reach its prompt or answer here; a busy machine triples that.
const RUN_MS = 60_000;

describe('keyway connect claude-code --login cut short at the real CLI’s prompt', () => {
  const REFRESH = `sk-ant-ort01-${CANARY}-login-refresh`;
  const REPLY = 'Stand-in says: logged in through keyway.';
  const tokens = tokenEndpoint({
    host: 'platform.claude.com',
    path: '/v1/oauth/token',
    refreshToken: REFRESH,
    body: 'json',
    clientId: CLIENT_ID,
    accessPrefix: 'sk-ant-oat01-',
    refreshPrefix: 'sk-ant-ort01-',
  });
  let world: AgentWorld;
  /** keyway connect's temporary folder (TMPDIR), where a login's own folder is made. */
  let scratch: string;
  const agentKey = `agent-key-${process.pid}`;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.14`,
      hosts: HOSTS,
      handlers: [tokens.handler, anthropicHandler({ accessToken: tokens.isValidAccess, reply: { text: REPLY } })],
      // No grant: `keyway connect` makes it in the store.
      grants: {},
      secrets: {},
    });
    scratch = mkdtempSync(join(tmpdir(), 'keyway-connect-tmp-'));
  }, 120_000);
  afterAll(async () => {
    if (world) for (const secret of [REFRESH, ...tokens.accessTokens, tokens.refreshToken]) expect(world.leak(secret)).toBeUndefined();
    await world?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** The keyway CLI as the user runs it: their HOME, the CLIs on PATH, the running keyway's home. */
  const userEnv = (): Record<string, string> => {
    const listeners = process.env['KEYWAY_LISTENERS_DIR'];
    return {
      PATH: [AGENT_BIN, '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      HOME: world.home,
      TMPDIR: scratch,
      TERM: 'xterm',
      KEYWAY_HOME: world.proxy.home,
      ...world.proxy.env,
      AGENT_KEY: agentKey,
      ...(listeners ? { KEYWAY_LISTENERS_DIR: listeners } : {}),
    };
  };
  const keyway = async (args: string[]) => {
    const r = await runProcess(...cliCommand(args), userEnv(), '', RUN_MS, world.work);
    world.outputs.push(r.stdout, r.stderr);
    return r;
  };

  /** `keyway connect claude-code --login` on a pseudo-terminal, its screen kept as it comes. */
  function connectOnTerminal(): { child: ChildProcess; screen: () => string } {
    const words = cliShellLine(['connect', 'claude-code', '--login', '--agent', 'agent']);
    // `exec`: script's child is keyway connect itself, so a test can signal it.
    const child = spawn('script', ['-qfec', `exec ${words}`, '/dev/null'], { env: userEnv(), cwd: world.work, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout!.on('data', (c: Buffer) => (screen += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (screen += c.toString()));
    return { child, screen: () => screen.replace(/\r/g, '') };
  }

  /** Every file and folder under the user's home, relative to it. */
  const homeEntries = () => readdirSync(world.home, { recursive: true, encoding: 'utf8' }).sort();
  /** Requests keyway saw (its audit's request lines, not its changes'), telemetry or other. */
  const requestLines = () => world.proxy.auditLines().filter((l) => l['action'] === undefined);

  /** Runs the login to its prompt, then `stop` on it; what was on the screen and the exit status. */
  async function cutShort(stop: (terminal: { child: ChildProcess; pid: number }) => void): Promise<{ text: string; code: number | null }> {
    const requestsBefore = requestLines().length;
    const seenBefore = world.standin.seen.length;
    const terminal = connectOnTerminal();
    const exited = once(terminal.child, 'exit');
    try {
      await waitFor(() => (terminal.screen().includes(PROMPT) ? true : undefined), 'claude’s paste-code prompt', RUN_MS);
      // The grant was in place and served before claude started; claude waits, having called nothing.
      const pid = Number(readFileSync(`/proc/${terminal.child.pid}/task/${terminal.child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      stop({ child: terminal.child, pid });
      const [code] = (await exited) as [number | null];
      const text = terminal.screen();
      world.outputs.push(text);
      // Not one request passed keyway or reached the stand-in while the login ran: claude's
      // telemetry, error reports and update checks are off as the profile has them. (Without the
      // switches, claude sends its event log as it ends: /api/event_logging/v2/batch, seen here
      // on SIGTERM; a Ctrl-C at once may end it before its first batch.)
      expect(requestLines().slice(requestsBefore)).toEqual([]);
      expect(world.standin.seen.slice(seenBefore)).toEqual([]);
      return { text, code };
    } finally {
      if (terminal.child.exitCode === null) {
        terminal.child.kill('SIGKILL');
        await exited;
      }
    }
  }

  /** What is said and left whichever way the login was cut short. */
  async function expectLeftWaiting(text: string): Promise<void> {
    expect(text).toContain(
      'before its login passed keyway: nothing was captured; nothing it wrote was kept, your ~/.claude/.credentials.json and the rest of your home are as they were',
    );
    expect(text).toContain(
      'keyway: grant claude-code stays, holding no login (keyway grants list says it waits for one): to finish, run keyway connect claude-code --agent agent --login; to undo, keyway grants rm claude-code',
    );
    // The home as it was (empty), and no login folder left in the temporary one.
    expect(homeEntries()).toEqual([]);
    expect(readdirSync(scratch).filter((name) => name.startsWith('keyway-login-'))).toEqual([]);
    // The grant, with no login; the listing says what fills it, not `secrets set`.
    const listed = await keyway(['grants', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^claude-code\s+login_capture\s+waiting_for_login\s/m);
    expect(listed.stdout).toContain('grant claude-code: waiting for login: run keyway connect claude-code --agent agent --login');
    expect(listed.stdout).not.toContain('secrets set');
  }

  it('Ctrl-C at the prompt: the home as it was, no request through keyway, the grant waiting for its login and said so', { timeout: 3 * RUN_MS }, async () => {
    const { text, code } = await cutShort(({ child }) => child.stdin!.write('\x03'));
    expect(code).not.toBe(0);
    expect(text).toContain('keyway: grant claude-code watches platform.claude.com/v1/oauth/token; running claude auth login --claudeai under keyway run');
    // The prompt reads the key itself: claude alone hears it, and exits 130.
    expect(text).toContain('keyway: claude auth login --claudeai was interrupted (it exited with 130) before its login passed keyway');
    await expectLeftWaiting(text);
    // doctor says it too, among its checks of the home, and for the profile: the model's grant holds no login.
    const home = await keyway(['doctor', '--agent', 'agent']);
    expect(home.stdout).toContain(
      'WARN  login grants: grant claude-code holds no login yet (waiting for login: run keyway connect claude-code --agent agent --login) -> keyway connect claude-code --agent agent --login',
    );
    const doctor = await keyway(['doctor', '--profile', 'claude-code', '--agent', 'agent']);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain(
      "FAIL  a grant for its model: grant claude-code covers it but holds no login yet: the agent's calls would go without one -> keyway connect claude-code --agent agent --login",
    );
  });

  it('SIGTERM to keyway connect at the prompt (a second try, on the waiting grant without --replace): the same', { timeout: 3 * RUN_MS }, async () => {
    const { text, code } = await cutShort(({ pid }) => process.kill(pid, 'SIGTERM'));
    expect(code).not.toBe(0);
    expect(text).not.toContain('exists');
    await expectLeftWaiting(text);
    expect(text).toContain('keyway: claude auth login --claudeai was stopped (SIGTERM; it exited with');
    const replaced = world.proxy.auditLines().filter((l) => l['action'] === 'grants.replace' && l['grant'] === 'claude-code');
    expect(replaced).toHaveLength(1);
  });

  it('filled with --import (no --replace), claude answers through keyway, uncontained and contained, and never says its configuration file is missing', {
    timeout: 4 * RUN_MS,
  }, async () => {
    // A login claude made before keyway: an access token that expired, and the refresh token.
    mkdirSync(join(world.home, '.claude'), { recursive: true, mode: 0o700 });
    const credentials = {
      claudeAiOauth: {
        accessToken: `sk-ant-oat01-${CANARY}-expired`,
        refreshToken: REFRESH,
        expiresAt: Date.now() - 60_000,
        scopes: ['user:inference', 'user:profile', 'user:sessions:claude_code'],
        subscriptionType: 'max',
      },
    };
    writeFileSync(join(world.home, '.claude', '.credentials.json'), JSON.stringify(credentials), { mode: 0o600 });
    const imported = await keyway(['connect', 'claude-code', '--import', '--agent', 'agent']);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain("imported Claude Code's login into grant claude-code");

    // Uncontained, with the profile: CLAUDE_CONFIG_DIR is the home's ~/.claude, where a login run in
    // the home had left backups of ~/.claude.json.
    const profile = builtinProfile('claude-code');
    const plain = await keyway(['run', '--agent', 'agent', ...profile.flags, '--', 'claude', '-p', 'Hello.']);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toBe(REPLY);
    expect(plain.stdout + plain.stderr).not.toContain(NOT_FOUND);
    expect(tokens.refreshes).toBe(1);

    const contained = await world.run(['claude', '-p', 'Hello again.'], profile.flags, profile.env, RUN_MS);
    expect(contained.code, contained.stdout + contained.stderr).toBe(0);
    expect(contained.stdout.trim()).toBe(REPLY);
    expect(contained.stdout + contained.stderr).not.toContain(NOT_FOUND);
    expect(world.standin.seen.filter((s) => s.path === '/v1/messages')).toHaveLength(2);

    const listed = await keyway(['grants', 'list']);
    expect(listed.stdout).toMatch(/^claude-code\s+login_capture\s+active\s/m);
    expect(listed.stdout).not.toContain('waiting for login');
  });
});
