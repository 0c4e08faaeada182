// --allow-write of a path a first run lacks (contain/missing-writable.ts): made only inside a home,
// one level, as a folder or (with an extension) a file; anything else refused saying to make it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeMissing, writableTarget } from '../../src/contain/missing-writable.ts';

describe('--allow-write of a missing path', () => {
  const base = mkdtempSync(join(tmpdir(), 'keyway-missing-writable-'));
  const home = join(base, 'home');
  mkdirSync(home);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('an existing path is taken as it resolves, nothing to make', () => {
    expect(writableTarget(home, [home])).toEqual({ path: home });
  });

  it('in the home, its parent there: planned as a folder, or a file where the name has an extension (a trailing / says folder)', () => {
    expect(writableTarget(join(home, '.claude'), [home]).missing).toMatchObject({ path: join(home, '.claude'), kind: 'folder' });
    expect(writableTarget(join(home, '.claude.json'), [home]).missing).toMatchObject({ kind: 'file' });
    expect(writableTarget(`${join(home, 'cache.d')}/`, [home]).missing).toMatchObject({ kind: 'folder' });
  });

  it('refused, saying to make it: outside every home, the home itself missing, two levels missing, a link leading nowhere', () => {
    expect(() => writableTarget(join(base, 'elsewhere'), [home])).toThrow(/only inside your home folder\): make it first/);
    expect(() => writableTarget(join(home, 'a', 'b'), [home])).toThrow(/nor its folder .*\/a: make it first/);
    expect(() => writableTarget(join(base, 'nohome'), [join(base, 'nohome')])).toThrow(/only inside your home folder/);
    // HOME=/ (a service account's) is no home to make things in: that would be the whole host.
    expect(() => writableTarget(join(base, 'elsewhere'), ['/'])).toThrow(/only inside your home folder/);
    symlinkSync(join(base, 'nowhere'), join(home, '.dangling'));
    expect(() => writableTarget(join(home, '.dangling'), [home])).toThrow(/a link to something that does not exist/);
  });

  it('makes each private to its owner: a 0700 folder, a 0600 file, `{}` in a .json file; never over something there', () => {
    const planned = [join(home, '.tool'), join(home, '.tool.json'), join(home, '.tool.toml')].map((p) => writableTarget(p, [home]).missing!);
    expect(makeMissing(planned)).toHaveLength(3);
    expect(statSync(join(home, '.tool')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, '.tool.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(home, '.tool.json'), 'utf8')).toBe('{}\n');
    expect(readFileSync(join(home, '.tool.toml'), 'utf8')).toBe('');
    // Made meanwhile by someone else: not overwritten.
    expect(() => makeMissing(planned.slice(1, 2))).toThrow(/could not make .*\.tool\.json: EEXIST/);
  });
});
