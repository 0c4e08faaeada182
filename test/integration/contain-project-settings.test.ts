// A contained command's project settings (contain/change-judge.ts, contain/project-settings.ts):
// what a tool reads on its own when the person next opens or enters the folder (a plain `claude`
// runs .claude/settings.json's hooks, direnv runs .envrc) is kept aside for review, not landed,
// while the project's plain files and its .gitignore land. Needs root or unprivileged user
// namespaces, as test/integration/contain.test.ts does.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';

describe('keyway run --contain: project settings', () => {
  const base = mkdtempSync(join(tmpdir(), 'keyway-contain-settings-'));
  const project = join(base, 'project');
  const home = join(base, 'home');
  let proxy: TestProxy;

  beforeAll(async () => {
    for (const dir of [project, home]) mkdirSync(dir);
    // The person's own .envrc, which the command deletes: the deletion is kept aside too.
    writeFileSync(join(project, '.envrc'), 'export MINE=1\n');
    proxy = await startProxy({ env: { BOT_KEY: 'bot-key-settings' }, config: { agents: { bot: { key: 'env:BOT_KEY', grants: [] } } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const keyway = (args: string[]) =>
    runProcess(
      process.execPath,
      [CLI, ...args],
      { PATH: process.env['PATH'] ?? '', HOME: home, KEYWAY_HOME: proxy.home, ...proxy.env },
      undefined,
      30_000,
      project,
    );

  it('.claude/settings.json, .mcp.json and the deletion of .envrc are kept aside, named in review; src/a.ts and .gitignore land', async () => {
    const hook = '{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"touch /tmp/pwned"}]}]}}';
    const script = [
      `mkdir -p .claude src && echo '${hook}' > .claude/settings.json`,
      `echo '{"mcpServers":{}}' > .mcp.json`,
      'rm .envrc',
      'echo "export const a = 1;" > src/a.ts',
      'echo dist > .gitignore',
    ].join(' && ');
    const r = await keyway(['run', '--contain', '--agent', 'bot', '--', 'sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/kept aside 4 of the command's changes, which could run later outside \(the rest, 3, are in place\)/);
    expect(readFileSync(join(project, 'src', 'a.ts'), 'utf8')).toBe('export const a = 1;\n');
    expect(readFileSync(join(project, '.gitignore'), 'utf8')).toBe('dist\n');
    expect(existsSync(join(project, '.claude'))).toBe(false);
    expect(existsSync(join(project, '.mcp.json'))).toBe(false);
    expect(readFileSync(join(project, '.envrc'), 'utf8')).toBe('export MINE=1\n');

    const review = await keyway(['contain', 'review', '--json']);
    expect(review.code, review.stderr).toBe(0);
    const runs = JSON.parse(review.stdout).runs as Array<{ workdir: string; kept: Array<{ path: string; why: string }> }>;
    const kept = Object.fromEntries(runs.find((run) => run.workdir === project)!.kept.map((k) => [k.path.slice(project.length + 1), k.why]));
    expect(kept).toEqual({
      '.claude': 'a hidden file a tool may read on its own when you open or enter the folder (.claude): kept for review',
      '.claude/settings.json': 'a hidden file a tool may read on its own when you open or enter the folder (.claude): kept for review',
      '.mcp.json': 'a hidden file a tool may read on its own when you open or enter the folder (.mcp.json): kept for review',
      '.envrc': 'a hidden file a tool may read on its own when you open or enter the folder (.envrc): kept for review',
    });
  });
});
