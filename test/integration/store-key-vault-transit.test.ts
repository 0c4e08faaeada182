// The master key wrapped by Vault's transit engine (store.key: {kms: vault_transit}), issue 49: a real
// `keyway start` on a home whose key a Vault double (its transit API, checking the token) wraps, the
// key in no file, a rotation, and a refused token stopping the start with a clear reason.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startVaultDouble, type VaultDouble } from '../helpers/secret-source-doubles.ts';

const VAULT_TOKEN = `hvs.${CANARY}-transit-token`;
const SECRET = `${CANARY}-transit-grant-secret`;

describe('the master key wrapped by Vault transit', () => {
  let vault: VaultDouble;
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy | undefined;
  const outputs: string[] = [];
  const cli = async (args: string[], stdin?: string, extra: Record<string, string> = {}) => {
    const r = await runCli([...args, '--home', home], { ...env, ...extra }, stdin);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  /** The key as Vault unwraps the file: what someone holding the Vault token (and only then) gets. */
  const unwrapped = async (): Promise<Buffer> => {
    const file = JSON.parse(readFileSync(join(home, 'data', 'master.key.kms'), 'utf8')) as { ciphertext: string; kms: string };
    expect(file.kms).toBe('vault_transit');
    const res = await fetch(`${vault.url}/v1/transit/decrypt/keyway`, {
      method: 'POST',
      headers: { 'x-vault-token': VAULT_TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ ciphertext: Buffer.from(file.ciphertext, 'base64').toString('utf8') }),
    });
    return Buffer.from(((await res.json()) as { data: { plaintext: string } }).data.plaintext, 'base64');
  };
  const keyInFiles = (key: Buffer) =>
    readdirSync(home, { recursive: true, encoding: 'utf8' })
      .map((name) => join(home, name))
      .filter((path) => statSync(path).isFile())
      .filter((path) => {
        const bytes = readFileSync(path);
        return bytes.includes(key) || [key.toString('base64'), key.toString('hex')].some((f) => bytes.toString('latin1').includes(f));
      });

  beforeAll(async () => {
    vault = await startVaultDouble({ token: VAULT_TOKEN, transitKeys: ['keyway'] });
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({ store: { key: { kms: 'vault_transit', key_id: 'keyway', address: vault.url, token: 'env:VAULT_TOKEN_REF' } } }),
    );
    env = cleanEnv({ VAULT_TOKEN_REF: VAULT_TOKEN });
  });

  afterAll(async () => {
    await proxy?.stop();
    await vault?.close();
    for (const text of [...outputs, proxy?.stdout() ?? '', proxy?.stderr() ?? '']) {
      expect(findLeak(text, VAULT_TOKEN)).toBeUndefined();
      expect(findLeak(text, SECRET)).toBeUndefined();
    }
  });

  it('a new home: Vault makes the key, only its ciphertext is kept, the key in no file; the store serves the command line', async () => {
    proxy = await startChildProxy({ cli: DIST_CLI, home, env });
    expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
    expect(keyInFiles(await unwrapped())).toEqual([]);
    expect((await cli(['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    expect((await cli(['secrets', 'set', 'api', '--stdin'], SECRET)).code).toBe(0);
    expect(JSON.parse((await cli(['key', 'status', '--json'])).stdout)).toMatchObject({ kept: 'kms', kms_key_id: 'keyway' });
  });

  it('key rotate: a new key made by Vault seals every record; the old one no longer opens the store', async () => {
    const before = await unwrapped();
    const rotated = await cli(['key', 'rotate', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const after = await unwrapped();
    expect(after.equals(before)).toBe(false);
    expect(keyInFiles(after)).toEqual([]);
    const listed = await cli(['grants', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"api"');
  });

  it('a token Vault refuses: nothing opens the store, and the reason names the transit key and Vault', async () => {
    const refused = await cli(['grants', 'list'], undefined, { VAULT_TOKEN_REF: 'hvs.not-the-token' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Vault transit key keyway could not unwrap the master key: Vault answered 403: permission denied/);
  });
});
