// The compile cache (cli/compile-cache.ts) holds code keyway runs: it is used only in a folder no one
// but this user (or root) can write, all the way up, and hidden from a contained command.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useCompileCache } from '../../src/cli/compile-cache.ts';
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
