// Attacking policy as code (issue 88, item 7): a policy file another user can swap. keyway refuses a
// file that others may write, or one in a folder they may write; the path it is given must not get
// around that. A link in a folder every user may write, pointing at a well-kept folder, lets any
// user point it elsewhere (between keyway's check and its read, or before the next reload): the
// start and the reload refuse it, as they refuse the folder itself. And a reload that meets such a
// file keeps the policy in force: the forbid still refuses through the real proxy, with curl.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryLeaks, curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const FORBID = '@id("no-admin") forbid (principal, action, resource) when { context.path_lower like "/admin*" };\n';

describe('attack 88: a policy file reached through a folder others may write', () => {
  const made: string[] = [];
  let upstream: TestUpstream | undefined;
  let proxy: TestProxy | undefined;

  afterAll(async () => {
    const leaks = proxy ? canaryLeaks(proxy) : [];
    await proxy?.stop();
    await upstream?.close();
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
    expect(leaks).toEqual([]);
  });

  /** A well-kept folder with the policy, and a folder every user may write holding a link to it. */
  function linkedPolicy(home: string): { kept: string; viaLink: string } {
    const root = mkdtempSync(join(home, 'attack88-'));
    const kept = join(root, 'kept');
    mkdirSync(kept, { mode: 0o700 });
    writeFileSync(join(kept, 'main.cedar'), FORBID, { mode: 0o600 });
    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    symlinkSync(kept, join(open, 'link'));
    return { kept, viaLink: join(open, 'link', 'main.cedar') };
  }

  it('refuses to start on policy.files naming a path through a link in a folder every user may write', async () => {
    const home = makeHome();
    const { viaLink } = linkedPolicy(home);
    await expect(startProxy({ home, config: { policy: { files: [viaLink] } } })).rejects.toThrow(/main\.cedar is refused: .*writable by every user/);
  });

  it('refuses to start on a policy file outside the home: a contained agent may write its working folder', async () => {
    const project = mkdtempSync(join(tmpdir(), 'keyway-attack88-project-'));
    made.push(project);
    writeFileSync(join(project, 'team.cedar'), FORBID, { mode: 0o600 });
    await expect(startProxy({ home: makeHome(), config: { policy: { files: [join(project, 'team.cedar')] } } })).rejects.toThrow(
      /team\.cedar is refused: it is outside keyway's home/,
    );
    // Nor through a link in the home's own policies folder.
    const home = makeHome();
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    symlinkSync(join(project, 'team.cedar'), join(home, 'policies', 'team.cedar'));
    await expect(startProxy({ home })).rejects.toThrow(/team\.cedar is refused: it is outside keyway's home/);
  });

  it('refuses such a path at reload and keeps the forbid in force (curl)', async () => {
    upstream = await startUpstream();
    const home = makeHome();
    const { kept, viaLink } = linkedPolicy(home);
    const configFor = (files: string[]) => ({
      policy: { files },
      agents: { claude: { key: 'env:CLAUDE_KEY', grants: ['github'] } },
    });
    proxy = await startProxy({
      home,
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-github` }],
      env: { CLAUDE_KEY: 'claude-key' },
      config: configFor([join(kept, 'main.cedar')]),
    });
    const get = async (path: string) => {
      const r = await curl(
        [
          '-x',
          `http://claude:claude-key@127.0.0.1:${proxy!.port}`,
          '--cacert',
          proxy!.bundlePath,
          '-w',
          '\n%{http_code}',
          `https://api.example.test:${upstream!.port}${path}`,
        ],
        cleanEnv(),
      );
      return Number(r.stdout.split('\n').pop());
    };
    expect(await get('/admin/a')).toBe(403);
    const configFile = join(home, 'config', 'keyway.yaml');
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace(join(kept, 'main.cedar'), viaLink));
    const outcome = await proxy.running.reload();
    expect(outcome).toMatchObject({ reloaded: false, error: { code: 'config_invalid' } });
    expect(outcome.reloaded === false && outcome.error.message).toMatch(/is refused: .*writable by every user/);
    expect(await get('/admin/b')).toBe(403);
    expect(await get('/public')).toBe(200);
    expect(upstream.seen.some((s) => s.url.startsWith('/admin'))).toBe(false);
  });
});
