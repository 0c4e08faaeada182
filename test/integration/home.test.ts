import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEnv, cliCommand } from '../helpers/keyway.ts';

// keyway's home is --home, else KEYWAY_HOME, else ~/.keyway: never the working folder. Before, `cd
// sub && keyway ca` silently made a second CA in sub/certs. And a command that only reads makes
// nothing: no CA, store or key where nobody asked for one.

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real CLI from a given working folder, with exactly this environment. */
function cliIn(cwd: string, args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(...cliCommand(args), { cwd, env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `keyway-${name}-`));
}

/** Every path under `dir`, relative, sorted: what a command left behind. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('the home', () => {
  it('is ~/.keyway from any working folder: two folders, one CA, nothing made in either', async () => {
    const userHome = tempDir('user');
    const first = tempDir('cwd-a');
    const second = tempDir('cwd-b');
    mkdirSync(join(second, 'sub'));
    const env = cleanEnv({ HOME: userHome });

    const init = await cliIn(first, ['init', '--json'], env);
    expect(init.code, init.stderr).toBe(0);
    const made = JSON.parse(init.stdout) as { home: string; ca: string };
    expect(made.home).toBe(join(userHome, '.keyway'));
    expect(made.ca).toBe(join(userHome, '.keyway', 'certs', 'ca.pem'));

    const fromFirst = await cliIn(first, ['ca', '--json'], env);
    const fromSecond = await cliIn(join(second, 'sub'), ['ca', '--json'], env);
    expect(fromFirst.code, fromFirst.stderr).toBe(0);
    expect(fromSecond.code, fromSecond.stderr).toBe(0);
    const a = JSON.parse(fromFirst.stdout) as { path: string; fingerprint256: string };
    const b = JSON.parse(fromSecond.stdout) as { path: string; fingerprint256: string };
    expect(b.path).toBe(a.path);
    expect(b.fingerprint256).toBe(a.fingerprint256);

    // The working folders hold exactly what they held before.
    expect(tree(first)).toEqual([]);
    expect(tree(second)).toEqual(['sub']);
  });

  it('is KEYWAY_HOME when set, and --home over both', async () => {
    const userHome = tempDir('user');
    const envHome = tempDir('envhome');
    const flagHome = tempDir('flaghome');
    const cwd = tempDir('cwd');
    const env = cleanEnv({ HOME: userHome, KEYWAY_HOME: envHome });

    const viaEnv = await cliIn(cwd, ['init', '--json'], env);
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout).home).toBe(envHome);
    const viaFlag = await cliIn(cwd, ['init', '--json', '--home', flagHome], env);
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(JSON.parse(viaFlag.stdout).home).toBe(flagHome);

    expect(existsSync(join(envHome, 'certs', 'ca.pem'))).toBe(true);
    expect(existsSync(join(flagHome, 'certs', 'ca.pem'))).toBe(true);
    expect(tree(userHome)).toEqual([]);
    expect(tree(cwd)).toEqual([]);
  });
});

describe('commands that only read, on a home that has nothing yet', () => {
  const readers: string[][] = [
    ['ca'],
    ['ca', '--json'],
    ['grants', 'list'],
    ['grants', 'list', '--json'],
    ['agents', 'list'],
    ['audit', 'tail'],
    ['audit', 'query'],
    ['audit', 'verify'],
    ['env'],
    ['status'],
    ['stop'],
    ['doctor', '--proxy', '127.0.0.1:9', '--admin', 'http://127.0.0.1:9'],
  ];

  it('make no CA, store, key or folder, in the home or the working folder', async () => {
    const userHome = tempDir('user');
    const cwd = tempDir('cwd');
    const env = cleanEnv({ HOME: userHome });
    for (const args of readers) {
      const result = await cliIn(cwd, args, env);
      expect(result.stderr + result.stdout, args.join(' ')).not.toMatch(/unexpected error/);
      expect(tree(userHome), `after keyway ${args.join(' ')}`).toEqual([]);
      expect(tree(cwd), `after keyway ${args.join(' ')}`).toEqual([]);
    }
  });

  it('keyway ca says there is no CA yet and which command makes one', async () => {
    const userHome = tempDir('user');
    const result = await cliIn(tempDir('cwd'), ['ca'], cleanEnv({ HOME: userHome }));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`no CA yet in ${join(userHome, '.keyway')}`);
    expect(result.stderr).toContain('keyway init');
    expect(result.stderr).toContain('keyway start');
  });

  it('a write makes what it needs, and a read then finds it', async () => {
    const userHome = tempDir('user');
    const cwd = tempDir('cwd');
    const env = cleanEnv({ HOME: userHome });
    const add = await cliIn(cwd, ['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.github.com'], env);
    expect(add.code, add.stderr).toBe(0);
    const data = join(userHome, '.keyway', 'data');
    expect(existsSync(join(data, 'store.json'))).toBe(true);
    expect(existsSync(join(data, 'master.key'))).toBe(true);
    const list = await cliIn(tempDir('elsewhere'), ['grants', 'list', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('"github"');
    expect(tree(cwd)).toEqual([]);
    // Still only asked for a grant: no CA was made.
    expect(existsSync(join(userHome, '.keyway', 'certs'))).toBe(false);
  });

  it('a store without its key is one clear line, and no second key is generated', async () => {
    const userHome = tempDir('user');
    const env = cleanEnv({ HOME: userHome });
    const cwd = tempDir('cwd');
    expect((await cliIn(cwd, ['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.github.com'], env)).code).toBe(0);
    const keyFile = join(userHome, '.keyway', 'data', 'master.key');
    rmSync(keyFile);
    const list = await cliIn(cwd, ['grants', 'list'], env);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('master key does not');
    expect(existsSync(keyFile)).toBe(false);
  });
});
