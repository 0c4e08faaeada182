// The compile cache (cli/compile-cache.ts) holds code keyway runs: it is used only in a folder no one
// but this user (or root) can write, all the way up, and hidden from a contained command.
import { chmodSync, existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useCompileCache } from '../../src/cli/compile-cache.ts';
import { pruneCompileCache } from '../../src/cli/compile-cache-prune.ts';
import { defaultHidden } from '../../src/contain/sandbox.ts';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A user's home, with the ~/.cache most homes have. */
function home(withCache = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-compile-cache-'));
  made.push(dir);
  if (withCache) mkdirSync(join(dir, '.cache'), { mode: 0o700 });
  return dir;
}

describe('useCompileCache', () => {
  it('uses ~/.cache/keyway/compile-cache, made for this user alone', () => {
    const dir = home();
    const enabled: string[] = [];
    const used = useCompileCache({ HOME: dir }, (d) => enabled.push(d));
    expect(used).toBe(join(dir, '.cache', 'keyway', 'compile-cache'));
    expect(enabled).toEqual([used]);
    expect(statSync(used!).mode & 0o077).toBe(0);
  });

  it('uses none where another user could write a folder on the way (a shared or loosened .cache)', () => {
    const dir = home();
    chmodSync(join(dir, '.cache'), 0o777);
    const enabled: string[] = [];
    expect(useCompileCache({ HOME: dir }, (d) => enabled.push(d))).toBeUndefined();
    expect(enabled).toEqual([]);
  });

  it('uses none where the home has no ~/.cache, and makes none there', () => {
    const dir = home(false);
    const enabled: string[] = [];
    expect(useCompileCache({ HOME: dir }, (d) => enabled.push(d))).toBeUndefined();
    expect(enabled).toEqual([]);
    expect(existsSync(join(dir, '.cache'))).toBe(false);
  });

  it('uses none without an absolute HOME that is there (and makes none)', () => {
    const enabled: string[] = [];
    expect(useCompileCache({}, (d) => enabled.push(d))).toBeUndefined();
    expect(useCompileCache({ HOME: 'relative/home' }, (d) => enabled.push(d))).toBeUndefined();
    const gone = join(home(), 'gone');
    expect(useCompileCache({ HOME: gone }, (d) => enabled.push(d))).toBeUndefined();
    expect(existsSync(gone)).toBe(false);
    expect(enabled).toEqual([]);
  });

  it('is hidden from a contained command, like the credential files under each home', () => {
    expect(defaultHidden(['/home/me', '/root'])).toEqual(expect.arrayContaining(['/home/me/.cache/keyway', '/root/.cache/keyway']));
  });
});

describe('pruneCompileCache', () => {
  const DAY = 86_400_000;
  /** A file (or folder) in the cache, last written `days` ago. */
  const aged = (path: string, days: number, folder = false) => {
    if (folder) mkdirSync(path, { recursive: true });
    else writeFileSync(path, 'compiled');
    const at = (Date.now() - days * DAY) / 1000;
    utimesSync(path, at, at);
  };

  it('removes what Node wrote more than 30 days ago, and the folders that leaves empty, once a day', () => {
    const cache = join(home(), '.cache', 'keyway', 'compile-cache');
    mkdirSync(cache, { recursive: true });
    const old = join(cache, 'v22.0.0-x64-aaaa-0');
    const current = join(cache, 'v24.21.0-x64-bbbb-0');
    const fresh = join(cache, 'v24.21.0-x64-cccc-0');
    aged(old, 0, true);
    aged(join(old, 'one'), 45);
    aged(join(old, 'two'), 31);
    aged(current, 0, true);
    aged(join(current, 'kept'), 2);
    aged(join(current, 'stale'), 40);
    aged(fresh, 0, true); // just made, nothing in it yet
    aged(old, 31, true);
    const outside = join(home(), 'not-the-cache');
    aged(outside, 90);
    symlinkSync(outside, join(current, 'link'));
    lutimesSync(join(current, 'link'), (Date.now() - 60 * DAY) / 1000, (Date.now() - 60 * DAY) / 1000);

    expect(pruneCompileCache(cache)).toBe(5); // one, two, their folder, stale, the link
    expect(readdirSync(cache).sort()).toEqual(['.pruned', 'v24.21.0-x64-bbbb-0', 'v24.21.0-x64-cccc-0']);
    expect(readdirSync(current)).toEqual(['kept']);
    expect(existsSync(outside)).toBe(true); // a link is removed, never followed

    // Within the day: not looked at again.
    aged(join(current, 'kept'), 50);
    expect(pruneCompileCache(cache)).toBe(0);
    expect(readdirSync(current)).toEqual(['kept']);
    // A day later: it is.
    expect(pruneCompileCache(cache, Date.now() + DAY + 1000)).toBe(2); // kept, and its folder
  });

  it('runs where the cache is used', () => {
    const dir = home();
    const cache = join(dir, '.cache', 'keyway', 'compile-cache');
    mkdirSync(join(cache, 'v1'), { recursive: true });
    aged(join(cache, 'v1', 'old'), 60);
    expect(useCompileCache({ HOME: dir }, () => undefined)).toBe(cache);
    expect(readdirSync(cache)).toEqual(['.pruned']);
  });
});
