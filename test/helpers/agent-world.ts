// A world for a real coding-agent CLI under `keyway run --contain`: the vendor's stand-ins on port 443
// of a loopback address of the test's own (a contained agent reaches TLS on 443 only), a keyway that
// maps the vendor's host names there (`proxy.hosts`) and denies every other host (`proxy.unmatched:
// deny`), the agent's own home outside /tmp (a contained command gets a private /tmp, so a home there
// would hide what the agent could not write), and a working folder. It keeps every output, so a test
// can search them all, and the agent's files, for the real credential.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { cliCommand, runProcess, startProxy, type TestProxy } from './keyway.ts';
import { findLeak } from './leak-canary.ts';
import { type StandinHandler, type StandinServer, type StandinWsHandler, startStandinServer } from './model-standins/server.ts';

/** The repository's node_modules/.bin, where the agent CLIs are installed (devDependencies). */
export const AGENT_BIN = fileURLToPath(new URL('../../node_modules/.bin', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

const COPY_WAIT_MS = 180_000;

/**
 * A node_modules/.bin the contained agent can run. It runs as another user (nobody, keyway being
 * root here), who cannot enter a checkout cloned into a folder only root may enter (a 0700 mktemp -d,
 * as CI does). There the CLIs are used from a copy of node_modules made of hard links (one per test
 * run, in the folder helpers/runnable-copy.ts uses, which every user may enter): the same files,
 * reachable.
 */
function agentBin(): string {
  if (othersMayEnter(AGENT_BIN)) return AGENT_BIN;
  const parent = inject('runnableKeywayParent');
  const root = join(parent, 'agent-clis');
  const ready = join(parent, 'agent-clis.ready');
  let mine = false;
  try {
    mkdirSync(join(parent, 'agent-clis.lock'));
    mine = true;
  } catch {
    // Another test process is making it.
  }
  if (mine) {
    mkdirSync(root, { mode: 0o755 });
    execFileSync('cp', ['-al', join(REPO, 'node_modules'), join(root, 'node_modules')]);
    writeFileSync(ready, '');
  }
  const until = Date.now() + COPY_WAIT_MS;
  while (!existsSync(ready)) {
    if (Date.now() > until) throw new Error('the agent CLIs copy was not made in time');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  return join(root, 'node_modules', '.bin');
}

/** Whether every folder from / down to `dir` lets other users pass through. */
function othersMayEnter(dir: string): boolean {
  for (let path = dir; ; path = dirname(path)) {
    if ((statSync(path).mode & 0o001) === 0) return false;
    if (path === dirname(path)) return true;
  }
}

export interface AgentWorldOptions {
  /** A loopback address of the test's own (127.X.Y.Z): its stand-ins listen on port 443 there. */
  address: string;
  /** The vendor host names keyway maps to the stand-ins. */
  hosts: string[];
  handlers: StandinHandler[];
  websocketHandlers?: StandinWsHandler[];
  /** keyway's grants (config form); their secrets come from `secrets` (env: references). */
  grants: Record<string, unknown>;
  secrets: Record<string, string>;
  /** keyway's budgets (config form): none unless given. */
  budgets?: unknown[];
}

export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface AgentWorld {
  standin: StandinServer;
  proxy: TestProxy;
  /** The agent's home: outside /tmp, read-only to it but for what the profile lets it write. */
  home: string;
  /** The folder it runs in (writable to it). */
  work: string;
  outputs: string[];
  /** Where keyway keeps a profile's state for this world's agent under --contain (what the agent sees as its ~/.claude, ~/.codex, ~/.gemini). */
  state(profile: string): string;
  /** `keyway run --contain --agent agent FLAGS -- COMMAND`, HOME the agent's home, PATH with the CLIs. */
  run(command: string[], flags: string[], env?: Record<string, string>, timeoutMs?: number): Promise<AgentRun>;
  /** The first place `secret` shows up: an output, a file of the agent's home or working folder, keyway's audit or logs. */
  leak(secret: string): string | undefined;
  close(): Promise<void>;
}

export async function startAgentWorld(options: AgentWorldOptions): Promise<AgentWorld> {
  const standin = await startStandinServer({
    listen: { host: options.address, port: 443 },
    handlers: options.handlers,
    websocketHandlers: options.websocketHandlers ?? [],
  });
  const proxy = await startProxy({
    env: { ...options.secrets, AGENT_KEY: `agent-key-${process.pid}` },
    config: {
      proxy: { hosts: Object.fromEntries(options.hosts.map((h) => [h, options.address])), allow_networks: ['127.0.0.0/8'], unmatched: 'deny' },
      grants: options.grants,
      agents: { agent: { key: 'env:AGENT_KEY' } },
      ...(options.budgets === undefined ? {} : { budgets: options.budgets }),
    },
  });
  // Homes live under the repository's .test-output (ignored by git): not /tmp, which is private inside.
  const homes = join(REPO, '.test-output', 'agent-homes');
  mkdirSync(homes, { recursive: true });
  const home = mkdtempSync(join(homes, 'home-'));
  // The agent runs as another user (nobody, keyway being root here): it must be able to walk in.
  chmodSync(home, 0o755);
  const work = mkdtempSync(join(tmpdir(), 'keyway-agent-work-'));
  chmodSync(work, 0o755);
  const outputs: string[] = [];
  const path = [agentBin(), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].join(':');
  return {
    standin,
    proxy,
    home,
    work,
    outputs,
    state: (profile) => join(proxy.home, 'profiles-state', profile, 'agent'),
    async run(command, flags, env = {}, timeoutMs = 60_000) {
      const listeners = process.env['KEYWAY_LISTENERS_DIR'];
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--agent', 'agent', ...flags, '--', ...command]),
        { PATH: path, HOME: home, KEYWAY_HOME: proxy.home, ...proxy.env, ...(listeners ? { KEYWAY_LISTENERS_DIR: listeners } : {}), ...env },
        '',
        timeoutMs,
        work,
      );
      outputs.push(r.stdout, r.stderr);
      return r;
    },
    leak(secret) {
      for (const [i, text] of outputs.entries()) {
        const form = findLeak(text, secret);
        if (form) return `output ${i} (${form})`;
      }
      for (const root of [home, work, join(proxy.home, 'profiles-state')]) {
        for (const file of filesUnder(root)) {
          const form = findLeak(readFileSync(file), secret);
          if (form) return `${file} (${form})`;
        }
      }
      const audit = findLeak(safeRead(proxy.auditPath), secret);
      if (audit) return `keyway's audit (${audit})`;
      const logs = findLeak(proxy.logs.join(''), secret);
      return logs ? `keyway's log (${logs})` : undefined;
    },
    async close() {
      await proxy.stop();
      await standin.close();
      rmSync(home, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Every regular file under `root` (links not followed: an agent's links lead to its own binary). */
export function filesUnder(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && statSync(path).size < 64 * 1024 * 1024) found.push(path);
    }
  };
  walk(root);
  return found;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * `codex exec` headless, with Codex's own switches on its command line (it has no variables for
 * them): no OTLP metrics to ab.chatgpt.com, no plugin marketplace (chatgpt.com, github.com), no
 * ChatGPT apps (MCP); and no sandbox of its own, which needs a user namespace (bubblewrap): keyway's
 * containment is the sandbox. The prompt goes after it.
 */
export const CODEX_EXEC: readonly string[] = [
  'codex',
  'exec',
  '--skip-git-repo-check',
  '-c',
  'analytics.enabled=false',
  '--disable',
  'plugins',
  '--disable',
  'apps',
  '--sandbox',
  'danger-full-access',
];

/**
 * A built-in profile for world.run: `--profile NAME`, and, for what a user passes beside it on purpose
 * (a variable the profile deliberately does not set), `--env NAME` with its value.
 */
export function builtinProfile(name: string, passed: Record<string, string> = {}): { flags: string[]; env: Record<string, string> } {
  const flags = ['--profile', name];
  for (const variable of Object.keys(passed)) flags.push('--env', variable);
  return { flags, env: { ...passed } };
}
