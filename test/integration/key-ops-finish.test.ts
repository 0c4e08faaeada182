// Key operations that finish what they promise (issue 60), on real homes driven by the command line
// and `keyway start` as a user runs them, the KMS a double of AWS KMS's wire protocol:
// - a `key rewrap` killed after data/master.key.kms is written and before data/master.key is removed
//   (the files arranged exactly as that kill leaves them) is finished by the next command: the plain
//   key goes, once proven the same key, with its key.rewrap line; a plain key that is another key is
//   no kill of keyway's, and is refused with both files kept;
// - a `key rotate` cut short after the store was sealed again is finished by the next start, which
//   writes the rotation's key.rotate line (once, however many processes open the home);
// - a `key rotate` killed while it holds the key lock: the next one takes the lock over as soon as
//   the holder is gone, not 30 s later; a live holder is still waited for and refused.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Store } from '../../src/credentials/store/index.ts';
import { wrappedKeyText } from '../../src/credentials/store/key-wrap.ts';
import { startChildProxy } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { type KmsDouble, startKmsDouble } from '../helpers/kms-double.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const AWS_KEY = { accessKeyId: 'AKIAKEYFINISH0001', secretAccessKey: `${CANARY}-finish-kms-caller-secret` };
const LOCK_MODULE = fileURLToPath(new URL('../../src/credentials/store/lock.ts', import.meta.url));

interface AuditLine {
  action?: string;
  actor?: string;
  client?: string;
  message?: string;
}

function auditLines(home: string): AuditLine[] {
  const path = join(home, 'logs', 'audit.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditLine);
}

const plainKeyOf = (home: string) => Buffer.from(readFileSync(join(home, 'data', 'master.key'), 'utf8').trim(), 'base64');

describe('key operations finish what they promise', () => {
  let kms: KmsDouble;
  const outputs: string[] = [];
  const kmsEnv = cleanEnv({ AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey });
  const run = async (home: string, args: string[], env = kmsEnv) => {
    const r = await runCli([...args, '--home', home], env);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  /** A home with one grant, its key in data/master.key; then store.key names the KMS. */
  const plainHomeMovedToKms = async (): Promise<string> => {
    const home = makeHome();
    expect((await run(home, ['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({ store: { key: { kms: 'aws', key_id: 'alias/keyway', region: 'us-east-1', endpoint: kms.url } } }),
    );
    return home;
  };
  /** What `key rewrap` writes as data/master.key.kms for `key`, asked of the KMS as keyway asks it. */
  const wrapWithKms = async (home: string, key: Buffer) => {
    const { KMSClient, EncryptCommand } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ region: 'us-east-1', endpoint: kms.url, credentials: AWS_KEY });
    const out = await client.send(new EncryptCommand({ KeyId: 'alias/keyway', Plaintext: key }));
    writeFileSync(join(home, 'data', 'master.key.kms'), wrappedKeyText(Buffer.from(out.CiphertextBlob!), out.KeyId!, 'aws'), { mode: 0o600 });
  };

  beforeAll(async () => {
    kms = await startKmsDouble([AWS_KEY]);
    kms.createKey('alias/keyway');
  });

  afterAll(async () => {
    await kms?.close();
    for (const text of outputs) for (const secret of [AWS_KEY.secretAccessKey]) expect(findLeak(text, secret)).toBeUndefined();
  });

  it('a rewrap killed between writing master.key.kms and removing master.key: the next command removes the plain key, the store opens, the line is written', async () => {
    const home = await plainHomeMovedToKms();
    const key = plainKeyOf(home);
    // As the kill leaves it: the wrapped key written whole (a rename), the plain one not yet removed.
    await wrapWithKms(home, key);
    const status = await run(home, ['key', 'status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ kept: 'kms' });
    expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
    expect(existsSync(join(home, 'data', 'master.key.kms'))).toBe(true);
    const listed = await run(home, ['grants', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"gh"');
    // The line the killed rewrap never wrote: by the command that finished it, though it only reads.
    const rewraps = auditLines(home).filter((l) => l.action === 'key.rewrap');
    expect(rewraps).toHaveLength(1);
    expect(rewraps[0]).toMatchObject({ client: 'keyway', message: expect.stringMatching(/a rewrap cut short was finished/) });
    expect((await run(home, ['grants', 'add', 'other', '--type', 'bearer', '--domains', 'other.example.test'])).code).toBe(0);
    expect(auditLines(home).filter((l) => l.action === 'key.rewrap')).toHaveLength(1);
    expect((await run(home, ['audit', 'verify'])).code).toBe(0);
  });

  it('the same kill, then `keyway key rewrap` again: it finishes the first and says the plain key is removed', async () => {
    const home = await plainHomeMovedToKms();
    await wrapWithKms(home, plainKeyOf(home));
    const again = await run(home, ['key', 'rewrap']);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
    expect((await run(home, ['grants', 'list', '--json'])).stdout).toContain('"gh"');
    expect(auditLines(home).filter((l) => l.action === 'key.rewrap')).toHaveLength(1);
  });

  it('a plain master.key that is another key beside the wrapped one is no kill of keyway: refused, both files kept', async () => {
    const home = await plainHomeMovedToKms();
    const key = plainKeyOf(home);
    await wrapWithKms(home, key);
    const other = randomBytes(32);
    writeFileSync(join(home, 'data', 'master.key'), `${other.toString('base64')}\n`, { mode: 0o600 });
    const wrappedBefore = readFileSync(join(home, 'data', 'master.key.kms'));
    for (const args of [
      ['grants', 'list'],
      ['key', 'rewrap'],
    ]) {
      const refused = await run(home, args);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/master\.key holds another key than the one .*master\.key\.kms wraps: no rewrap leaves that/);
    }
    expect(plainKeyOf(home).equals(other)).toBe(true);
    expect(readFileSync(join(home, 'data', 'master.key.kms')).equals(wrappedBefore)).toBe(true);
    // Not a key at all: refused the same way, nothing removed.
    writeFileSync(join(home, 'data', 'master.key'), 'not a key\n', { mode: 0o600 });
    const garbage = await run(home, ['grants', 'list']);
    expect(garbage.stderr).toMatch(/master\.key holds no valid key beside .*master\.key\.kms: no rewrap leaves that/);
    expect(readFileSync(join(home, 'data', 'master.key'), 'utf8')).toBe('not a key\n');
  });

  it('a rotation cut short after the store was sealed again: the next start finishes it and writes its key.rotate line, once', async () => {
    const home = makeHome();
    const env = cleanEnv();
    expect((await run(home, ['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'], env)).code).toBe(0);
    const current = plainKeyOf(home);
    const next = randomBytes(32);
    // Steps 2 and 3 of a rotation (key-rotation.ts), then a kill before step 4.
    writeFileSync(join(home, 'data', 'master.key.next'), `${next.toString('base64')}\n`, { mode: 0o600 });
    const store = await Store.open(join(home, 'data', 'store.json'), current);
    await store.rekey(next);
    store.close();
    const proxy = await startChildProxy({ home, env });
    await proxy.stop();
    expect(plainKeyOf(home).equals(next)).toBe(true);
    const rotations = auditLines(home).filter((l) => l.action === 'key.rotate');
    expect(rotations).toHaveLength(1);
    expect(rotations[0]).toMatchObject({
      client: 'keyway',
      message: expect.stringMatching(/a rotation cut short was finished when the store was next opened/),
    });
    // Nothing owed is left to be written again by the next process.
    const again = await startChildProxy({ home, env });
    await again.stop();
    expect((await run(home, ['grants', 'add', 'b', '--type', 'bearer', '--domains', 'b.example.test'], env)).code).toBe(0);
    expect(auditLines(home).filter((l) => l.action === 'key.rotate')).toHaveLength(1);
    expect((await run(home, ['audit', 'verify'], env)).code).toBe(0);
    // A rotation run to its end writes its one line, with who ran it.
    expect((await run(home, ['key', 'rotate'], { ...env, KEYWAY_ACTOR: 'ops-rotation' })).code).toBe(0);
    const both = auditLines(home).filter((l) => l.action === 'key.rotate');
    expect(both).toHaveLength(2);
    expect(both[1]).toMatchObject({ client: 'cli', actor: 'ops-rotation' });
    expect(both[1]!.message).toBeUndefined();
  });

  describe('the key lock of a killed rotation', () => {
    let holder: ChildProcess | undefined;
    afterAll(() => {
      holder?.kill('SIGKILL');
    });

    /** A process holding the key lock as `key rotate` holds it (withKeyLock), until killed. */
    const holdKeyLock = async (dataDir: string): Promise<ChildProcess> => {
      const script = `const { withKeyLock } = await import(${JSON.stringify(LOCK_MODULE)});
await withKeyLock(${JSON.stringify(dataDir)}, () => undefined, async () => { process.stdout.write('held\\n'); await new Promise(() => setInterval(() => {}, 1000)); });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
        child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}): ${err}`)));
      });
      return child;
    };

    it('is taken over as soon as its holder is gone; a live holder is still waited for, then refused', async () => {
      const home = makeHome();
      const env = cleanEnv();
      expect((await run(home, ['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'], env)).code).toBe(0);
      const before = plainKeyOf(home);
      holder = await holdKeyLock(join(home, 'data'));
      const refused = await run(home, ['key', 'rotate'], env);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/another key rotate or rewrap is running on this home/);
      expect(plainKeyOf(home).equals(before)).toBe(true);
      const exited = new Promise((resolve) => holder!.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
      const started = Date.now();
      const rotated = await run(home, ['key', 'rotate'], env);
      expect(rotated.code, rotated.stderr).toBe(0);
      // The stale timer alone would refuse it for 30 s; the bound is loose for a loaded machine.
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(plainKeyOf(home).equals(before)).toBe(false);
      expect((await run(home, ['grants', 'list', '--json'], env)).stdout).toContain('"api"');
    });
  });
});
