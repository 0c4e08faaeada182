import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveHome } from '../../src/paths.ts';

describe('resolveHome', () => {
  it('is --home, else KEYWAY_HOME, else ~/.keyway from the HOME given, never the working folder', () => {
    expect(resolveHome('rel', { KEYWAY_HOME: '/env', HOME: '/u' })).toBe(resolve('rel'));
    expect(resolveHome(undefined, { KEYWAY_HOME: '/env', HOME: '/u' })).toBe('/env');
    expect(resolveHome(undefined, { HOME: '/u' })).toBe('/u/.keyway');
    expect(resolveHome(undefined, {})).toBe(resolve(homedir(), '.keyway'));
    expect(resolveHome(undefined, { HOME: '/u' })).not.toBe(process.cwd());
  });

  it('takes an empty or blank KEYWAY_HOME or --home as unset, not as the working folder', () => {
    expect(resolveHome(undefined, { KEYWAY_HOME: '', HOME: '/u' })).toBe('/u/.keyway');
    expect(resolveHome(undefined, { KEYWAY_HOME: '  ', HOME: '/u' })).toBe('/u/.keyway');
    expect(resolveHome('', { HOME: '/u' })).toBe('/u/.keyway');
  });
});
