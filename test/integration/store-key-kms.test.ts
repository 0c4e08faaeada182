// The store's master key wrapped by a KMS, and rotated while keyway serves (issue 49). keyway
// (`keyway start`, a real process) calls AWS KMS through the AWS SDK v3 client; the KMS is a double
// of its wire protocol that checks each request's signature (kms-double.ts; moto cannot be installed
// here). A real undici client sends requests through keyway to an upstream that takes only the
// grant's token.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, TEST_HOSTS } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type KmsDouble, startKmsDouble } from '../helpers/kms-double.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const AWS_KEY = { accessKeyId: 'AKIAKEYWRAPPER0001', secretAccessKey: `${CANARY}-kms-caller-secret` };
const TOKEN = `${CANARY}-kms-grant-token`;
const TOKEN_AFTER = `${CANARY}-kms-token-after-rotation`;

/** Every file under a folder, as bytes. */
function filesUnder(dir: string): Array<[string, Buffer]> {
  const files: Array<[string, Buffer]> = [];
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    try {
      if (statSync(path).isFile()) files.push([path, readFileSync(path)]);
    } catch (err) {
      // Gone between the listing and the read: the serving keyway's store lock writes its holder
      // file beside the lock and renames it in, so one can be listed and then be gone.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return files;
}

/** Where a 32-byte key shows in a file: raw, base64, base64url or hex. */
function keyFoundIn(files: Array<[string, Buffer]>, key: Buffer): string[] {
  const forms = [key.toString('base64'), key.toString('base64url'), key.toString('hex')];
  return files.filter(([, bytes]) => bytes.includes(key) || forms.some((f) => bytes.toString('latin1').includes(f))).map(([path]) => path);
}

describe('the master key wrapped by AWS KMS, and rotated while keyway serves', () => {
  let kms: KmsDouble;
  let keyArn: string;
  let upstream: TestUpstream;
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;
  let client: ProxyAgent;
  const outputs: string[] = [];
  const accepted = new Set([TOKEN]);

  const cli = async (args: string[], stdin?: string) => {
    const result = await runCli([...args, '--home', home], env, stdin);
    outputs.push(result.stdout, result.stderr);
    return result;
  };
  const get = async () => {
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: client, signal: AbortSignal.timeout(slack(15_000)) });
    await res.body.text();
    return res.statusCode;
  };
  /** The master key as the KMS unwraps it: what someone holding the KMS (and only then) gets. */
  const unwrappedKey = async (file = 'master.key.kms'): Promise<Buffer> => {
    const wrapped = JSON.parse(readFileSync(join(home, 'data', file), 'utf8')) as { ciphertext: string };
    const { KMSClient, DecryptCommand } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ region: 'us-east-1', endpoint: kms.url, credentials: AWS_KEY });
    return Buffer.from((await client.send(new DecryptCommand({ CiphertextBlob: Buffer.from(wrapped.ciphertext, 'base64') }))).Plaintext!);
  };

  beforeAll(async () => {
    kms = await startKmsDouble([AWS_KEY]);
    keyArn = kms.createKey('alias/keyway');
    upstream = await startUpstream({ authorize: async (a) => [...accepted].some((t) => a === `Bearer ${t}`) });
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])), upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'] },
        store: { key: { kms: 'aws', key_id: 'alias/keyway', region: 'us-east-1', endpoint: kms.url } },
      }),
    );
    env = cleanEnv({ AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey });
    proxy = await startChildProxy({ cli: DIST_CLI, home, env });
    client = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'bundle.pem'), 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await Promise.all([kms?.close(), upstream?.close()]);
    for (const text of [...outputs, proxy?.stdout() ?? '', proxy?.stderr() ?? '']) {
      for (const secret of [TOKEN, TOKEN_AFTER, AWS_KEY.secretAccessKey]) expect(findLeak(text, secret)).toBeUndefined();
    }
  });

  it('a new home gets a key the KMS made: only its ciphertext on disk, the key itself in no file', async () => {
    expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
    expect(existsSync(join(home, 'data', 'master.key.kms'))).toBe(true);
    expect(kms.count('GenerateDataKey')).toBe(1);
    expect(keyFoundIn(filesUnder(home), await unwrappedKey())).toEqual([]);
    const status = await cli(['key', 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ kept: 'kms', kms_key_id: keyArn, rotation_pending: false });
  });

  it('serves: a grant added and its secret set by the command line is injected', async () => {
    expect((await cli(['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    expect((await cli(['secrets', 'set', 'api', '--stdin'], TOKEN)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 600)); // the running keyway re-reads the store within 250 ms
    expect(await get()).toBe(200);
  });

  it('keyway key rotate: every record sealed again under a new KMS-made key while requests keep succeeding; the audit keys stay', async () => {
    const publicKeyBefore = (await cli(['audit', 'public-key'])).stdout;
    const keyBefore = await unwrappedKey();
    const plan = await cli(['key', 'rotate', '--plan']);
    expect(plan.stdout).toMatch(/would make a new master key \(made and wrapped by AWS KMS key alias\/keyway\)/);
    expect((await unwrappedKey()).equals(keyBefore)).toBe(true);

    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      for (let i = 0; i < 400 && !stop; i++) statuses.push(await get());
    })();
    const rotated = await cli(['key', 'rotate', '--json']);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ rotated: true });
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    const keyAfter = await unwrappedKey();
    expect(keyAfter.equals(keyBefore)).toBe(false);
    // The store opens with the new key only.
    const store = JSON.parse(readFileSync(join(home, 'data', 'store.json'), 'utf8')) as { records: Record<string, unknown> };
    expect(Object.keys(store.records).length).toBeGreaterThan(0);
    expect(keyFoundIn(filesUnder(home), keyAfter)).toEqual([]);
    expect(existsSync(join(home, 'data', 'master.key.kms.next'))).toBe(false);
    // The running keyway follows: a secret set after the rotation (sealed with the new key) is what it sends.
    accepted.add(TOKEN_AFTER);
    accepted.delete(TOKEN);
    expect((await cli(['secrets', 'set', 'api', '--stdin'], TOKEN_AFTER)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    expect(await get()).toBe(200);
    // The checkpoint public key others hold is still right, and the chain verifies.
    expect((await cli(['audit', 'public-key'])).stdout).toBe(publicKeyBefore);
    const verify = await cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const lines = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
    expect(lines).toContain('"action":"key.rotate"');
  });

  it('a KMS key that is disabled: keyway does not start, and says which key and why', async () => {
    kms.disable(keyArn);
    try {
      const status = await cli(['grants', 'list']);
      expect(status.code).not.toBe(0);
      expect(status.stderr).toMatch(/store\.key: AWS KMS key alias\/keyway could not unwrap the master key: DisabledException/);
    } finally {
      kms.enable(keyArn);
    }
  });

  it('keyway key rewrap: a home with data/master.key is wrapped (--plan first changes nothing); start refuses the plain key meanwhile', async () => {
    const plain = makeHome();
    const plainEnv = cleanEnv({ AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey });
    const run = async (args: string[], stdin?: string) => {
      const r = await runCli([...args, '--home', plain], plainEnv, stdin);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    expect((await run(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    expect((await run(['secrets', 'set', 'gh', '--stdin'], TOKEN)).code).toBe(0);
    const key = Buffer.from(readFileSync(join(plain, 'data', 'master.key'), 'utf8').trim(), 'base64');
    mkdirSync(join(plain, 'config'), { recursive: true });
    writeFileSync(
      join(plain, 'config', 'keyway.yaml'),
      stringify({ store: { key: { kms: 'aws', key_id: 'alias/keyway', region: 'us-east-1', endpoint: kms.url } } }),
    );
    const refused = await run(['grants', 'list']);
    expect(refused.stderr).toMatch(/still holds the master key in plain: run `keyway key rewrap`/);
    const plan = await run(['key', 'rewrap', '--plan']);
    expect(plan.code).toBe(0);
    expect(existsSync(join(plain, 'data', 'master.key'))).toBe(true);
    const done = await run(['key', 'rewrap']);
    expect(done.code, done.stderr).toBe(0);
    expect(existsSync(join(plain, 'data', 'master.key'))).toBe(false);
    expect(keyFoundIn(filesUnder(plain), key)).toEqual([]);
    const listed = await run(['grants', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"gh"');
    expect(JSON.parse((await run(['key', 'status', '--json'])).stdout)).toMatchObject({ kept: 'kms' });
    expect(readFileSync(join(plain, 'logs', 'audit.jsonl'), 'utf8')).toContain('"action":"key.rewrap"');
  });

  it('the KMS double refuses a caller with a wrong key', async () => {
    const { KMSClient, GenerateDataKeyCommand } = await import('@aws-sdk/client-kms');
    const wrong = new KMSClient({ region: 'us-east-1', endpoint: kms.url, credentials: { ...AWS_KEY, secretAccessKey: 'wrong' }, maxAttempts: 1 });
    await expect(wrong.send(new GenerateDataKeyCommand({ KeyId: 'alias/keyway', KeySpec: 'AES_256' }))).rejects.toThrow(/signature/i);
  });
});
