import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';

// Config is validated once, where it is loaded: a command that only reads the config (grants
// list opens no proxy and compiles no rules) must refuse a bad rule value as `keyway start` does,
// in one line that names the key path.

function homeWith(agents: Record<string, unknown>): string {
  const home = makeHome();
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ agents }));
  return home;
}

const agentWithRule = (rule: Record<string, unknown>) => ({ claude: { key: 'env:CLAUDE_KEY', grants: ['github'], rules: [{ grant: 'github' }, rule] } });

describe('a command that only loads the config refuses a bad rule value', () => {
  it.each([
    [{ grant: 'github', hours: '09:00-18:00', tz: 'Mars/Olympus' }, 'agents.claude.rules.1.tz', 'unknown time zone "Mars/Olympus"'],
    [{ grant: 'github', paths: ['/repos/a**'] }, 'agents.claude.rules.1.paths.0', '** must be a whole segment'],
    [{ grant: 'github', sources: ['10.0.0.0/40'] }, 'agents.claude.rules.1.sources.0', 'prefix length'],
    [{ grant: 'gihub' }, 'agents.claude.rules.1.grant', "is not one of this agent's grants"],
  ])('grants list: %j', async (rule, keyPath, reason) => {
    const home = homeWith(agentWithRule(rule));
    const result = await runCli(['grants', 'list', '--home', home], cleanEnv({ HOME: home, CLAUDE_KEY: 'k' }));
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(keyPath);
    expect(lines[0]).toContain(reason);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('and accepts the same config once the value is fixed', async () => {
    const home = homeWith(agentWithRule({ grant: 'github', hours: '09:00-18:00', tz: 'Europe/Paris' }));
    const result = await runCli(['grants', 'list', '--home', home], cleanEnv({ HOME: home, CLAUDE_KEY: 'k' }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('an empty config file is not read as the defaults (issue 86)', () => {
  it.each([
    ['0 bytes', ''],
    ['only blank lines and comments', '\n# proxy:\n#   listen: 127.0.0.1:9999\n  \n'],
  ])('%s: start and a command refuse it in one line, and the home is untouched', async (what, text) => {
    const home = makeHome();
    const env = cleanEnv({ HOME: home });
    expect((await runCli(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--home', home], env)).code).toBe(0);
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), text);
    for (const args of [
      ['start', '--listen', '127.0.0.1:0'],
      ['grants', 'list'],
    ]) {
      const result = await runCli([...args, '--home', home], env);
      expect(result.code, args.join(' ')).not.toBe(0);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`is empty (${what})`);
      expect(lines[0]).toContain('delete it (or write {}) to run on the defaults');
    }
    // `{}` says "the defaults" on purpose: the grant added before is still there.
    writeFileSync(join(home, 'config', 'keyway.yaml'), '{}\n');
    const listed = await runCli(['grants', 'list', '--home', home], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('gh');
  });
});
