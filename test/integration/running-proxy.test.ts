import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';

// `keyway start --listen` puts the proxy somewhere the config does not say. The commands that point
// clients at it (env, run, doctor) must follow the running proxy, and fall back to the config when
// none runs, or when the one that announced itself is gone.
describe('the address of the running proxy', () => {
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;

  beforeAll(async () => {
    home = makeHome();
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    proxy = await startChildProxy({ home, env }); // --listen 127.0.0.1:<free port>, not the config's 8787
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const envOutput = async () => {
    const result = await runCli(['env', '--json', '--home', home], env);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Record<string, string>;
  };

  it('is what keyway env prints while the proxy runs', async () => {
    const announced = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as Record<string, unknown>;
    expect(announced).toMatchObject({ pid: proxy.child.pid, proxy: { host: '127.0.0.1', port: proxy.port } });
    expect((await envOutput())['HTTPS_PROXY']).toBe(`http://127.0.0.1:${proxy.port}`);
  });

  it('is checked by keyway doctor without --proxy', async () => {
    const result = await runCli(['doctor', '--home', home], env);
    expect(result.stdout).toContain(`ok    proxy: `);
    expect(result.stdout).toContain(`127.0.0.1:${proxy.port}`);
  });

  it('falls back to the config after the proxy stops, and ignores a file left by a dead process', async () => {
    expect(await proxy.stop()).toBe(0);
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);
    expect((await envOutput())['HTTPS_PROXY']).toBe('http://127.0.0.1:8787');

    // A crash leaves the file behind: its pid no longer runs (this one has exited already).
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    mkdirSync(join(home, 'data'), { recursive: true });
    writeFileSync(
      join(home, 'data', 'proxy.json'),
      JSON.stringify({ pid: Number(gone.stdout), proxy: { host: '127.0.0.1', port: 1 }, admin: null, started_at: new Date().toISOString() }),
    );
    expect((await envOutput())['HTTPS_PROXY']).toBe('http://127.0.0.1:8787');
  });
});
