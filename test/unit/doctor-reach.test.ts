// keyway doctor's warning when an agent started as this user could read every secret (issue 47).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSecretsReach, REACH_CHECK, reachOf } from '../../src/cli/commands/doctor/checks-reach.ts';
import type { Context } from '../../src/cli/commands/doctor/context.ts';
import { loadConfig } from '../../src/config/load.ts';

const home = mkdtempSync(join(tmpdir(), 'keyway-reach-doctor-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function context(env: NodeJS.ProcessEnv): Context {
  return { config: { home }, io: { env } } as unknown as Context;
}

describe('checkSecretsReach', () => {
  it('warns, loudly and with the fix, when the master key is in the environment', () => {
    const r = checkSecretsReach(context({ KEYWAY_MASTER_KEY: 'x' }));
    expect(r).toMatchObject({ check: REACH_CHECK, status: 'warn' });
    expect(r.detail).toContain('KEYWAY_MASTER_KEY is in your environment');
    expect(r.fix).toMatch(/keyway run --contain.*keyway service install/);
  });

  it('warns when the master key file is readable to this user', () => {
    writeFileSync(join(home, 'key'), 'k');
    const r = checkSecretsReach(context({ KEYWAY_MASTER_KEY_FILE: join(home, 'key') }));
    expect(r.status).toBe('warn');
    expect(r.detail).toMatch(/an agent running as you \(uid \d+\) can read every secret: .*key is (readable to you|yours)/);
  });

  it('is ok when the master key cannot be read (keyway runs as its own user)', () => {
    const r = checkSecretsReach(context({}));
    expect(r).toMatchObject({ status: 'ok', detail: expect.stringContaining('not readable') });
  });

  it('judges reach by ownership: a key the user owns is within reach whatever its mode (chmod 000 keeps no owner out)', () => {
    const key = join(home, 'owned-key');
    writeFileSync(key, 'k');
    chmodSync(key, 0o000);
    const owner = process.getuid?.() ?? 0;
    // As its owner, denied by the bits: still within reach.
    expect(reachOf(key, owner, () => false)).toMatch(/yours/);
    // Another uid, denied by the bits: out of reach; allowed by them: within.
    expect(reachOf(key, owner + 4242, () => false)).toBeUndefined();
    expect(reachOf(key, owner + 4242, () => true)).toBe('readable to you');
    if (owner === 0) {
      chownSync(key, 1000, 1000);
      const r = checkSecretsReach(context({ KEYWAY_MASTER_KEY_FILE: key }), 1000);
      expect(r).toMatchObject({ status: 'warn', detail: expect.stringMatching(/uid 1000.*is yours/) });
    }
    expect(reachOf(join(home, 'absent'), owner)).toBeUndefined();
  });

  it("warns when a keyway of this home runs as this user with the config's env: secrets in its environment (/proc/PID/environ)", async () => {
    const own = mkdtempSync(join(tmpdir(), 'keyway-reach-running-'));
    mkdirSync(join(own, 'config'), { recursive: true });
    mkdirSync(join(own, 'data', 'running'), { recursive: true });
    writeFileSync(join(own, 'config', 'keyway.yaml'), 'grants:\n  api: {type: bearer, domains: [api.example.test], secret: env:REACH_API_TOKEN}\n');
    // A process standing for that keyway: this uid's, with the secret in its environment, and its record.
    const keyway = spawn('sleep', ['30'], { env: { PATH: process.env['PATH'] ?? '', REACH_API_TOKEN: 'x' }, stdio: 'ignore' });
    await once(keyway, 'spawn');
    try {
      const record = { pid: keyway.pid, proxy: { host: '127.0.0.1', port: 1 }, admin: null, started_at: new Date().toISOString() };
      writeFileSync(join(own, 'data', 'running', `${keyway.pid}.json`), JSON.stringify(record));
      const config = loadConfig({ home: own });
      const r = checkSecretsReach({ config, io: { env: {} } } as unknown as Context);
      expect(r).toMatchObject({ status: 'warn', detail: expect.stringContaining(`keyway (pid ${keyway.pid}) runs as you`) });
      expect(r.detail).toContain('REACH_API_TOKEN');
      // Started without it in its environment: nothing to read there.
      keyway.kill();
      const bare = spawn('sleep', ['30'], { env: { PATH: process.env['PATH'] ?? '' }, stdio: 'ignore' });
      await once(bare, 'spawn');
      try {
        writeFileSync(join(own, 'data', 'running', `${bare.pid}.json`), JSON.stringify({ ...record, pid: bare.pid }));
        await once(keyway, 'exit');
        expect(checkSecretsReach({ config, io: { env: {} } } as unknown as Context).status).toBe('ok');
      } finally {
        bare.kill();
      }
    } finally {
      keyway.kill();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
