// Defect 11: `keyway init` makes config/ 0700 (like data/) and config/keyway.yaml 0600, whatever
// the umask of the shell that runs it.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cleanEnv, makeHome, runProcess } from '../helpers/keyway.ts';

/** `keyway init` in a child whose umask is set first (process.umask is per process). */
function initWithUmask(home: string, umask: number) {
  const script = `process.umask(${umask}); process.argv.splice(1, 0, ${JSON.stringify(CLI)}); await import(${JSON.stringify(CLI)});`;
  return runProcess(
    process.execPath,
    ['--input-type=module', '-e', script, '--', 'init', '--home', home],
    cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') }),
  );
}

describe('keyway init file modes', () => {
  it.each([0o022, 0o002, 0o000, 0o277])('config/ is 0700 and keyway.yaml 0600 under umask %o', async (umask) => {
    const home = join(makeHome(), 'home');
    const res = await initWithUmask(home, umask);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(statSync(join(home, 'config')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'config', 'keyway.yaml')).mode & 0o777).toBe(0o600);
    // data/ belongs to the store; here only: nothing for group or others.
    expect(statSync(join(home, 'data')).mode & 0o077).toBe(0);
  });
});
