// keyway key rotate on a home whose master key is data/master.key (no KMS): a new key, every record
// sealed again, and a rotation cut short between sealing and promoting the key finished by the next
// command that opens the store (issue 49). The command line runs as a user runs it.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/credentials/store/index.ts';
import { DIST_CLI, startChildProxy } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const TOKEN = `${CANARY}-rotate-file-token`;

describe('keyway key rotate on a file-kept key', () => {
  const home = makeHome();
  const env = cleanEnv();
  const outputs: string[] = [];
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--home', home], env, args.includes('--stdin') ? TOKEN : undefined);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const keyFile = () => Buffer.from(readFileSync(join(home, 'data', 'master.key'), 'utf8').trim(), 'base64');
  /** The grant's stored secret, read with `key`: proves which key seals the store. */
  const secretWith = async (key: Buffer) => {
    const store = await Store.open(join(home, 'data', 'store.json'), key);
    try {
      return JSON.stringify(store.get('grant:api'));
    } finally {
      store.close();
    }
  };

  it('--plan changes nothing; rotate gives a new key that alone opens the store, the secret kept', async () => {
    expect((await cli('grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test')).code).toBe(0);
    expect((await cli('secrets', 'set', 'api', '--stdin')).code).toBe(0);
    const before = keyFile();
    expect((await cli('key', 'rotate', '--plan')).stdout).toMatch(
      /would make a new master key \(written to .*master\.key\) and seal the store's \d+ records again/,
    );
    expect(keyFile().equals(before)).toBe(true);
    const rotated = await cli('key', 'rotate');
    expect(rotated.code, rotated.stderr).toBe(0);
    const after = keyFile();
    expect(after.equals(before)).toBe(false);
    expect(await secretWith(after)).toContain(TOKEN);
    await expect(secretWith(before)).rejects.toMatchObject({ code: 'store_wrong_key' });
    expect((await cli('audit', 'verify')).code).toBe(0);
    // A keyway started and stopped after the rotation signs a checkpoint with the pinned key, and
    // doctor checks it against that key, not one derived from the new master key.
    const proxy = await startChildProxy({ cli: DIST_CLI, home, env });
    await proxy.stop();
    const doctor = await cli('doctor', '--json', '--timeout', '5s');
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks;
    expect(checks.find((c) => c.check === 'audit checkpoint key')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/the newest checkpoint .* verifies/),
    });
  });

  it('two rotations at once: one at a time (the second waits or is refused), and the store opens with the key left', async () => {
    const [a, b] = await Promise.all([cli('key', 'rotate'), cli('key', 'rotate')]);
    expect([a.code, b.code]).toContain(0);
    for (const r of [a, b]) if (r.code !== 0) expect(r.stderr).toMatch(/another key rotate or rewrap is running on this home/);
    expect(await secretWith(keyFile())).toContain(TOKEN);
  });

  it('a rotation cut short after the store was sealed again: the next command opens it with the pending key and makes that key current', async () => {
    const current = keyFile();
    const next = randomBytes(32);
    // Steps 2 and 3 of a rotation, then a crash before step 4.
    writeFileSync(join(home, 'data', 'master.key.next'), `${next.toString('base64')}\n`, { mode: 0o600 });
    const store = await Store.open(join(home, 'data', 'store.json'), current);
    await store.rekey(next);
    store.close();
    const rotateLines = () => (readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8').match(/"action":"key\.rotate"/g) ?? []).length;
    const before = rotateLines();
    const listed = await cli('grants', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"api"');
    expect(keyFile().equals(next)).toBe(true);
    expect(existsSync(join(home, 'data', 'master.key.next'))).toBe(false);
    // Its key.rotate line, written by the command that finished it though it only reads (issue 60).
    expect(rotateLines()).toBe(before + 1);
    for (const text of outputs) expect(findLeak(text, TOKEN)).toBeUndefined();
  });
});
