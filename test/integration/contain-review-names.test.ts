// keyway contain review, as the outside test attacked it: a contained command names a file it
// writes with terminal escapes (ESC [2K and a carriage return erase the line they are on and write
// another) or with bytes that are not UTF-8. Its ordinary files land; every name it chose is shown
// escaped, on the run's last lines and in review (the raw ESC byte never reaches stdout or stderr);
// one name that is not UTF-8 no longer keeps everything else from landing; `review ID --apply`
// puts in place what review showed. And as an ordinary user (not root), --apply and --discard
// remove the run's scratch folder although the command left a folder its owner cannot write.
// Needs root (CI runs as root) and unprivileged user namespaces for the ordinary user's part.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cliCommand, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { runnableKeyway } from '../helpers/runnable-copy.ts';

const ESC = '\x1b';
/** A uid no account has: the ordinary user of this test. */
const USER = 40_000 + (process.pid % 10_000);

describe('keyway contain review: the names a contained command chose', () => {
  const base = mkdtempSync('/var/lib/keyway-review-names-');
  let proxy: TestProxy;

  beforeAll(async () => {
    execFileSync('chmod', ['0755', base]);
    proxy = await startProxy({
      env: { BOT_KEY: `${CANARY}-review-names` },
      config: { agents: { bot: { key: 'env:BOT_KEY', grants: [] } } },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    // The runs of this test still kept aside (their scratch folders in /var/tmp).
    for (const name of readdirSync('/var/tmp').filter((n) => n.startsWith('keyway-contain-'))) {
      const scratch = join('/var/tmp', name);
      try {
        const record = JSON.parse(readFileSync(join(scratch, 'run.json'), 'utf8')) as { workdir?: string };
        if (record.workdir?.startsWith(base)) rmSync(scratch, { recursive: true, force: true });
      } catch {
        // Not one of this test's.
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  /** The run's id, from its last lines. */
  const idOf = (stderr: string) => /keyway contain review (\w+)`/.exec(stderr)?.[1];

  it('shows every name escaped, lands the ordinary files, and --apply puts in place what review showed', async () => {
    const project = join(base, 'project');
    mkdirSync(project);
    const env = { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env };
    const keyway = async (...args: string[]) => {
      const r = await runProcess(...cliCommand(args), env, undefined, 30_000, project);
      expect(r.stdout + r.stderr, args.join(' ')).not.toContain(ESC);
      return r;
    };
    const script = [
      'import os',
      "open('ordinary.txt', 'w').write('ordinary\\n')",
      "os.makedirs('made/.git')",
      "open(b'made/.git/esc\\x1b[2K\\rforged', 'w').write('planted\\n')",
      "open(b'bad\\xff\\xfe.txt', 'w').write('raw\\n')",
    ].join('\n');
    const run = await keyway('run', '--contain', '--outside-home', '--agent', 'bot', '--', 'python3', '-c', script);
    expect(run.code, run.stderr).toBe(0);
    // One name that is not UTF-8 no longer keeps the rest from landing.
    expect(readFileSync(join(project, 'ordinary.txt'), 'utf8')).toBe('ordinary\n');
    expect(run.stderr).toContain(`keyway:   ${project}/made/.git/esc\\x1b[2K\\rforged: `);
    expect(run.stderr).toContain(`keyway:   ${project}/bad\\xff\\xfe.txt: a name that is not UTF-8`);
    const id = idOf(run.stderr)!;
    expect(id).toBeDefined();

    const listed = await keyway('contain', 'review');
    expect(listed.stdout).toMatch(new RegExp(`^${id}  .*  3 changes kept aside$`, 'm'));
    const shown = await keyway('contain', 'review', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`  ${project}/made/.git/esc\\x1b[2K\\rforged: `);
    expect(shown.stdout).toMatch(/^digest [0-9a-f]{16}; /m);
    const json = await keyway('contain', 'review', id, '--json');
    expect(JSON.parse(json.stdout).kept.map((k: { path: string }) => k.path)).toContain(`${project}/made/.git/esc${ESC}[2K\rforged`);

    const applied = await keyway('contain', 'review', id, '--apply');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(new RegExp(`^put in place 2 kept changes of run ${id}, as shown`));
    expect(applied.stderr).toContain(`not put in place (gone with the run): ${project}/bad\\xff\\xfe.txt: a name that is not UTF-8`);
    // The name it was shown escaped lands byte for byte; the one that is not UTF-8 does not.
    expect(readFileSync(join(project, 'made', '.git', `esc${ESC}[2K\rforged`), 'utf8')).toBe('planted\n');
    expect(
      readdirSync(project, { encoding: 'buffer' })
        .map((n) => n.toString('latin1'))
        .sort(),
    ).toEqual(['made', 'ordinary.txt']);
    expect((await keyway('contain', 'review')).stdout).not.toContain(id);
  });

  it('as an ordinary user: --apply and --discard remove the run although it left a folder its owner cannot write', async () => {
    const { node, cli } = runnableKeyway();
    const home = join(base, 'user-home');
    const project = join(base, 'user-project');
    for (const dir of [home, project]) mkdirSync(dir);
    execFileSync('chown', [`${USER}:${USER}`, home, project]);
    const env = { PATH: `${join(node, '..')}:/usr/sbin:/usr/bin:/bin`, HOME: home, KEYWAY_HOME: join(home, '.keyway') };
    const asUser = async (...args: string[]) => {
      const r = await runProcess(
        'setpriv',
        [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '--', node, cli, ...args],
        env,
        undefined,
        60_000,
        project,
      );
      expect(r.stdout + r.stderr, args.join(' ')).not.toContain(ESC);
      return r;
    };
    const init = await asUser('init');
    expect(init.code, init.stderr).toBe(0);
    const script = [
      'mkdir -p sub/.git && echo x > sub/.git/HEAD',
      `printf 'planted\\n' > "sub/.git/$(printf 'esc\\033[2K\\rforged')"`,
      'mkdir locked && echo z > locked/f && chmod 500 locked',
      'echo ok > ok.txt',
    ].join('; ');
    const runs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await asUser('run', '--contain', '--outside-home', '--', 'sh', '-c', script);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`${project}/sub/.git/esc\\x1b[2K\\rforged: `);
      runs.push(idOf(run.stderr)!);
      rmSync(join(project, 'locked'), { recursive: true, force: true });
    }
    expect(readFileSync(join(project, 'ok.txt'), 'utf8')).toBe('ok\n');
    const [first, second] = runs as [string, string];

    expect((await asUser('contain', 'review', first)).code).toBe(0);
    const applied = await asUser('contain', 'review', first, '--apply');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).not.toContain('EACCES');
    expect(readFileSync(join(project, 'sub', '.git', `esc${ESC}[2K\rforged`), 'utf8')).toBe('planted\n');
    expect(existsSync(`/var/tmp/keyway-contain-${first}`)).toBe(false);

    const discarded = await asUser('contain', 'review', second, '--discard');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.stdout).toBe(`discarded run ${second}'s kept changes\n`);
    expect(existsSync(`/var/tmp/keyway-contain-${second}`)).toBe(false);
    expect((await asUser('contain', 'review')).stdout).toBe('nothing kept aside: every contained run put its changes in place\n');
  });
});
