import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startChildProxy } from '../helpers/child-proxy.ts';
import { cleanEnv, CLI_BIN, cliCommand, cliShellLine, makeHome, runCli } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { formatLogLine } from '../../src/log/pretty.ts';

// What a new user sees: --version, init's next steps, and on a terminal a banner and human log
// lines; anywhere else (a service manager, a pipe) one line and JSON logs.
describe('first run', () => {
  it('--version and -V print the package version and the commit (`source` unbuilt)', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag], cleanEnv());
      expect(result.code, flag).toBe(0);
      // A build (KEYWAY_CLI_BIN) names the commit it was built from.
      if (CLI_BIN === undefined) expect(result.stdout, flag).toBe(`${version} (commit source)\n`);
      else expect(result.stdout, flag).toMatch(new RegExp(`^${version.replaceAll('.', '\\.')} \\(commit [0-9a-f]{12}(-dirty)?\\)\n$`));
    }
  });

  it('init ends with the next steps', async () => {
    const result = await runCli(['init', '--home', makeHome()], cleanEnv());
    expect(result.code, result.stderr).toBe(0);
    const next = result.stdout.slice(result.stdout.indexOf('Next steps:'));
    expect(next).toMatch(/1\. keyway start\n/);
    expect(next).toContain('keyway grants add');
    expect(next).toContain('keyway secrets set');
    expect(next).toContain('keyway run --');
  });

  it('init with a keyway already running for the home leaves out "keyway start" and says it runs', async () => {
    const home = makeHome();
    const proxy = await startChildProxy({ home, env: cleanEnv() });
    try {
      const result = await runCli(['init', '--home', home], cleanEnv());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`keyway is already running for this home (pid ${proxy.child.pid})`);
      const next = result.stdout.slice(result.stdout.indexOf('Next steps:'));
      expect(next).not.toContain('keyway start');
      expect(next).toMatch(/1\. keyway grants add/);
    } finally {
      await proxy.stop();
    }
  });

  it('on a terminal, start prints the banner and human log lines', async () => {
    const home = makeHome();
    const port = await freePort();
    const command = cliShellLine(['start', '--home', home, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0']);
    // util-linux script(1) runs the command on a pseudo-terminal: stdout and stderr are a TTY.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (c: Buffer) => (screen += c.toString()));
    try {
      await waitFor(() => (screen.includes('Ctrl-C stops keyway') ? true : undefined), 'the banner', 20_000);
      const text = screen.replace(/\r/g, '');
      expect(text).toContain(`keyway proxy on http://127.0.0.1:${port}\n`);
      expect(text).toMatch(/ {2}admin {3}http:\/\/127\.0\.0\.1:\d+\/ {2}\(the dashboard: sign in with the token in \S+admin\.token\)\n/);
      expect(text).toContain(`  CA      ${join(home, 'certs', 'ca.pem')}\n`);
      expect(text).toContain('  grants  0   agents 0');
      expect(text).toContain('No grants yet');
      expect(text).toContain('keyway grants add');
      expect(text).toContain('keyway run --');
      expect(text).toMatch(/^\d\d:\d\d:\d\d INFO {2}keyway is listening proxy=127\.0\.0\.1:\d+/m);
      expect(text).not.toContain('{"level"');
    } finally {
      // SIGTERM to keyway itself (the pid it announced): a graceful stop, which ends script too.
      const exited = once(child, 'exit');
      try {
        const { pid } = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { pid: number };
        process.kill(pid, 'SIGTERM');
      } catch {
        child.kill('SIGKILL'); // it never announced itself: nothing graceful to ask for
      }
      await exited;
    }
  });

  it('off a terminal, start prints one line and JSON logs', async () => {
    const proxy = await startChildProxy({ home: makeHome(), env: cleanEnv() });
    expect(await proxy.stop()).toBe(0);
    expect(proxy.stderr()).toMatch(/^keyway proxy on http:\/\/127\.0\.0\.1:\d+; CA /);
    expect(proxy.stderr()).not.toContain('No grants yet');
    const lines = proxy.stdout().trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  });

  for (const format of ['json', 'pretty']) {
    it(`keeps serving when whoever read its output goes away (keyway start --log-format ${format} 2>&1 | head -1)`, async () => {
      const home = makeHome();
      const port = await freePort();
      const child = spawn(...cliCommand(['start', '--home', home, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0', '--log-format', format]), {
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let exited: number | null | undefined;
      child.on('exit', (code) => (exited = code));
      try {
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        await waitFor(() => (out.includes('keyway is listening') ? true : undefined), 'the listening line', 20_000);
        // The reader leaves, as head does after its line: both streams (2>&1) go to a closed pipe.
        child.stdout.destroy();
        child.stderr.destroy();
        // Two store changes: each makes keyway log a line to the closed pipe.
        for (const id of ['one', 'two']) {
          const added = await runCli(['grants', 'add', id, '--type', 'bearer', '--domains', `${id}.example.test`, '--home', home], cleanEnv());
          expect(added.code, added.stderr).toBe(0);
          await new Promise((resolve) => setTimeout(resolve, 1_500)); // the proxy notices within a second
        }
        expect(exited).toBeUndefined();
        const { admin } = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { host: string; port: number } };
        const health = await fetch(`http://${admin.host}:${admin.port}/healthz`);
        expect(health.status).toBe(200);
      } finally {
        if (exited === undefined) {
          child.kill('SIGTERM');
          await once(child, 'exit');
        }
      }
    });
  }

  it('--log-format pretty off a terminal gives human lines; an unknown format is a usage error', async () => {
    const home = makeHome();
    const port = await freePort();
    const child = spawn(...cliCommand(['start', '--home', home, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0', '--log-format', 'pretty']), {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(() => (out.includes('keyway is listening') ? true : undefined), 'the listening line', 20_000);
      expect(out).toMatch(/^\d\d:\d\d:\d\d INFO {2}keyway is listening/m);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    const bad = await runCli(['start', '--home', home, '--log-format', 'xml'], cleanEnv());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--log-format: expected json or pretty, got "xml"');
  });
});

describe('formatLogLine', () => {
  it('renders time, level, message and the other fields; keeps a non-JSON line as it is', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5).getTime();
    const line = JSON.stringify({ level: 50, time, pid: 1, hostname: 'h', name: 'keyway', msg: 'reload failed', err: { message: 'bad' }, grants: ['a'] });
    expect(formatLogLine(line)).toBe('03:04:05 ERROR reload failed err={"message":"bad"} grants=["a"]');
    expect(formatLogLine('plain text\n')).toBe('plain text');
  });
});
