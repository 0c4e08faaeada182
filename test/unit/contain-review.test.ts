// keyway contain review reads what a run is only from keyway's own home (issue 58): the scratch
// folder's kept.json is the command uid's to write, so a change it names outside the run's folders,
// or by a path that climbs out of one, is not offered for --apply. Every name the command chose is
// shown escaped, and --apply puts in place only what `review ID` showed.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contain } from '../../src/cli/commands/contain.ts';
import { recordRun, reviewableRuns } from '../../src/contain/review.ts';

const base = mkdtempSync(join(tmpdir(), 'keyway-review-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('reviewableRuns', () => {
  it("lists a run from the home's record, and offers only kept changes inside its folders by a relative path", () => {
    const home = join(base, 'home');
    const scratch = join(base, 'keyway-contain-AbC123');
    mkdirSync(scratch, { recursive: true });
    const record = {
      v: 1 as const,
      startedMs: 1,
      workdir: '/srv/project',
      roots: ['/srv/project'],
      homes: [],
      pathFolders: [],
      pid: 999_999_999,
      state: 'done' as const,
    };
    writeFileSync(join(scratch, 'run.json'), JSON.stringify(record));
    recordRun(home, scratch, record);
    const change = (root: string, rel: string, kind = 'file') => ({ root, rel, kind, why: 'x' });
    writeFileSync(
      join(scratch, 'kept.json'),
      JSON.stringify({
        v: 1,
        kept: [
          change('/srv/project', '.git/config'),
          change('/etc', 'passwd'),
          change('/srv/project', '../../etc/passwd'),
          change('/srv/project', '/etc/passwd'),
          change('/srv/project', 'a//b'),
          change('/srv/project', 'x', 'device'),
        ],
      }),
    );
    const runs = reviewableRuns(home);
    expect(runs.map((r) => r.id)).toEqual(['AbC123']);
    expect(runs[0]!.kept).toEqual([change('/srv/project', '.git/config')]);
  });

  it('lists nothing that the home has no record of, whatever is in /var/tmp', () => {
    expect(reviewableRuns(join(base, 'another-home'))).toEqual([]);
  });
});

describe('keyway contain review of a kept record with hostile names', () => {
  const home = join(base, 'hostile-home');
  const project = join(base, 'hostile-project');
  const scratch = join(base, 'keyway-contain-Hst1le');
  const upper = join(scratch, '0', 'upper');
  const escName = 'esc\x1b[2K\rforged\u202e';
  const rawName = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]); // bad\xff\xfe
  const kept = [
    { root: project, rel: '.git', kind: 'dir', why: 'a git repository the command made' },
    { root: project, rel: `.git/${escName}`, kind: 'file', why: `a git repository the command made: ${escName}` },
    { root: project, rel: 'bad\\xff\\xfe', raw: rawName.toString('base64'), kind: 'file', why: 'a name that is not UTF-8' },
  ];

  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), readStdin: async () => '', env: {} } };
  }
  const review = async (...args: string[]) => {
    const captured = io();
    const code = await contain.run(['review', ...args, '--home', home], captured.io);
    return { code, out: captured.out.join('\n'), err: captured.err.join('\n') };
  };

  it('lists, shows and applies them escaped; --apply puts in place only what review ID showed', async () => {
    mkdirSync(project, { recursive: true });
    mkdirSync(join(upper, '.git'), { recursive: true });
    writeFileSync(join(upper, '.git', escName), 'planted\n');
    writeFileSync(Buffer.concat([Buffer.from(`${upper}/`), rawName]), 'raw\n');
    const record = { v: 1 as const, startedMs: 1, workdir: project, roots: [project], homes: [], pathFolders: [], pid: 999_999_999, state: 'done' as const };
    writeFileSync(join(scratch, 'run.json'), JSON.stringify(record));
    recordRun(home, scratch, record);
    writeFileSync(join(scratch, 'kept.json'), JSON.stringify({ v: 1, kept }));
    expect(reviewableRuns(home)[0]!.kept).toEqual(kept);

    // Never a raw control, bidirectional character or invalid byte on the terminal, in text or JSON.
    for (const args of [[], ['Hst1le'], ['Hst1le', '--json'], ['--json']]) {
      const shown = await review(...args);
      expect(shown.code).toBe(0);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for raw control bytes in what is printed
      expect(shown.out + shown.err).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e\ufffd]/);
    }
    const shown = await review('Hst1le');
    expect(shown.out).toContain(`  ${project}/.git/esc\\x1b[2K\\rforged\\u{202e}: a git repository the command made: esc\\x1b[2K\\rforged\\u{202e}`);
    expect(shown.out).toContain(`  ${project}/bad\\xff\\xfe: a name that is not UTF-8`);
    const digest = /digest ([0-9a-f]{16})/.exec(shown.out)![1]!;
    expect(JSON.parse((await review('Hst1le', '--json')).out).digest).toBe(digest);

    // The kept list changed after it was shown: nothing applied, one line saying so.
    writeFileSync(join(scratch, 'kept.json'), JSON.stringify({ v: 1, kept: [...kept, { root: project, rel: 'added', kind: 'file', why: 'x' }] }));
    writeFileSync(join(upper, 'added'), 'added\n');
    let applied = await review('Hst1le', '--apply');
    expect(applied.code).toBe(1);
    expect(applied.err).toMatch(/^keyway contain review: nothing applied: run Hst1le's kept changes \(digest [0-9a-f]{16}\) are not what/);
    expect(applied.err.split('\n')).toHaveLength(1);
    expect(existsSync(join(project, '.git'))).toBe(false);
    expect(existsSync(join(project, 'added'))).toBe(false);
    writeFileSync(join(scratch, 'kept.json'), JSON.stringify({ v: 1, kept }));

    // A file it would put in place was rewritten after it was shown: nothing applied.
    writeFileSync(join(upper, '.git', escName), 'rewritten\n');
    applied = await review('Hst1le', '--apply');
    expect(applied.code).toBe(1);
    expect(existsSync(join(project, '.git'))).toBe(false);

    // Shown again: applied, the escaped name byte for byte; the name that is not UTF-8 goes with the run.
    expect((await review('Hst1le')).code).toBe(0);
    applied = await review('Hst1le', '--apply');
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toMatch(/^put in place 2 kept changes of run Hst1le, as shown \(digest [0-9a-f]{16}\)$/);
    expect(applied.err).toBe(`keyway contain review: not put in place (gone with the run): ${project}/bad\\xff\\xfe: a name that is not UTF-8`);
    expect(readFileSync(join(project, '.git', escName), 'utf8')).toBe('rewritten\n');
    expect(readdirSync(project, { encoding: 'buffer' }).map((n) => n.toString('latin1'))).toEqual(['.git']);
    expect(existsSync(scratch)).toBe(false);
    expect(reviewableRuns(home)).toEqual([]);
  });

  it('--apply of a run review ID never showed applies nothing', async () => {
    const other = join(base, 'keyway-contain-NotShwn');
    mkdirSync(join(other, '0', 'upper'), { recursive: true });
    writeFileSync(join(other, '0', 'upper', 'file'), 'x');
    const record = { v: 1 as const, startedMs: 1, workdir: project, roots: [project], homes: [], pathFolders: [], pid: 999_999_999, state: 'done' as const };
    writeFileSync(join(other, 'run.json'), JSON.stringify(record));
    recordRun(home, other, record);
    writeFileSync(join(other, 'kept.json'), JSON.stringify({ v: 1, kept: [{ root: project, rel: 'file', kind: 'file', why: 'x' }] }));
    const applied = await review('NotShwn', '--apply');
    expect(applied.code).toBe(1);
    expect(applied.err).toContain('(it has not shown them yet)');
    expect(existsSync(join(project, 'file'))).toBe(false);
  });
});
