// keyway contain review reads what a run is only from keyway's own home (issue 58): the scratch
// folder's kept.json is the command uid's to write, so a change it names outside the run's folders,
// or by a path that climbs out of one, is not offered for --apply.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
