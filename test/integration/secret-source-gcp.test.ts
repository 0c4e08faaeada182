// A grant's secret in Google Secret Manager (secret_sources type gcp_secret_manager, issue 49): keyway
// (`keyway start`, a real process) signs a JWT assertion with a service account's key, exchanges it at
// the key's token_uri, and reads the secret version with the token. The double speaks both APIs over
// HTTPS: the token endpoint checks the assertion's RS256 signature, issuer and audience (and refuses
// a wrong key), Secret Manager checks the bearer token. The upstream takes only the secret's value.
import { createCipheriv, createDecipheriv, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, TEST_HOSTS } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const VALUE = `${CANARY}-gcp-secret-value`;
const EMAIL = 'keyway-reader@keyway-test.iam.gserviceaccount.com';
const PROJECT = 'keyway-test';
const KMS_KEY = `projects/${PROJECT}/locations/global/keyRings/keyway/cryptoKeys/master`;
const kmsKey = randomBytes(32);

function rsaPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

describe('a grant secret in Google Secret Manager', () => {
  const account = rsaPair();
  const stranger = rsaPair();
  let google: Server;
  let tokenUri: string;
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let client: ProxyAgent;
  let home: string;
  const issued = new Set<string>();
  const refusedAssertions: string[] = [];
  const accessed: string[] = [];
  const bodies: string[] = [];

  const keyFile = (privateKey: string) =>
    JSON.stringify({ type: 'service_account', project_id: PROJECT, client_email: EMAIL, private_key: privateKey, private_key_id: 'k1', token_uri: tokenUri });
  const get = async (host: string) => {
    const res = await request(`https://${host}:${upstream.port}/echo`, { dispatcher: client, signal: AbortSignal.timeout(slack(15_000)) });
    const text = await res.body.text();
    bodies.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };

  beforeAll(async () => {
    google = createServer(mintTestLeaf(['localhost']), (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        if (req.method === 'POST' && req.url === '/token') {
          const form = new URLSearchParams(Buffer.concat(chunks).toString());
          jwtVerify(form.get('assertion') ?? '', createPublicKey(account.publicKey), { issuer: EMAIL, audience: tokenUri, algorithms: ['RS256'] }).then(
            ({ payload }) => {
              if (!String(payload['scope']).includes('https://www.googleapis.com/auth/cloud-platform')) return json(400, { error: 'invalid_scope' });
              const token = `ya29.${randomBytes(12).toString('hex')}`;
              issued.add(token);
              return json(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
            },
            (err: Error) => {
              refusedAssertions.push(err.message);
              json(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
            },
          );
          return;
        }
        const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        if (!issued.has(bearer))
          return json(401, { error: { code: 401, status: 'UNAUTHENTICATED', message: 'Request had invalid authentication credentials.' } });
        accessed.push(req.url ?? '');
        // Cloud KMS: encrypt and decrypt with the one key this double holds (its own ciphertext format).
        const kms = /^\/v1\/(projects\/[^:]+):(encrypt|decrypt)$/.exec(req.url ?? '');
        if (req.method === 'POST' && kms) {
          if (kms[1] !== KMS_KEY) return json(404, { error: { code: 404, status: 'NOT_FOUND', message: `CryptoKey ${kms[1]} not found.` } });
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { plaintext?: string; ciphertext?: string };
          if (kms[2] === 'encrypt') {
            const nonce = randomBytes(12);
            const cipher = createCipheriv('aes-256-gcm', kmsKey, nonce);
            const sealed = Buffer.concat([nonce, cipher.update(Buffer.from(body.plaintext ?? '', 'base64')), cipher.final(), cipher.getAuthTag()]);
            return json(200, { name: KMS_KEY, ciphertext: sealed.toString('base64') });
          }
          try {
            const blob = Buffer.from(body.ciphertext ?? '', 'base64');
            const decipher = createDecipheriv('aes-256-gcm', kmsKey, blob.subarray(0, 12));
            decipher.setAuthTag(blob.subarray(blob.length - 16));
            const plain = Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
            return json(200, { plaintext: plain.toString('base64') });
          } catch {
            return json(400, { error: { code: 400, status: 'INVALID_ARGUMENT', message: 'Decryption failed' } });
          }
        }
        if (req.url === `/v1/projects/${PROJECT}/secrets/github-token/versions/latest:access`) {
          return json(200, { name: `projects/${PROJECT}/secrets/github-token/versions/3`, payload: { data: Buffer.from(VALUE).toString('base64') } });
        }
        return json(404, { error: { code: 404, status: 'NOT_FOUND', message: 'Secret [projects/keyway-test/secrets/nope] not found or has no versions.' } });
      });
    });
    google.listen(0, '127.0.0.1');
    await once(google, 'listening');
    const port = (google.address() as AddressInfo).port;
    tokenUri = `https://localhost:${port}/token`;
    upstream = await startUpstream({ requireAuthorization: `Bearer ${VALUE}` });
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'sa.json'), keyFile(account.privateKey), { mode: 0o600 });
    writeFileSync(join(home, 'stranger.json'), keyFile(stranger.privateKey), { mode: 0o600 });
    const endpoint = `https://localhost:${port}`;
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
        secret_sources: {
          gcp: { type: 'gcp_secret_manager', endpoint },
          stranger: { type: 'gcp_secret_manager', endpoint, credentials: `file:${join(home, 'stranger.json')}` },
        },
        grants: {
          api: { type: 'bearer', domains: ['api.example.test'], secret: { from: 'gcp', id: 'github-token' } },
          missing: { type: 'bearer', domains: ['other.example.test'], secret: { from: 'gcp', id: 'nope' } },
          stranger: { type: 'bearer', domains: ['tunnel.example.test'], secret: { from: 'stranger', id: 'github-token' } },
        },
      }),
    );
    // The account's key is found as Google's libraries find it; the test CA is trusted as a company's would be.
    const env = cleanEnv({
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      GOOGLE_APPLICATION_CREDENTIALS: join(home, 'sa.json'),
      NODE_EXTRA_CA_CERTS: TLS_FIXTURES.caPath,
    });
    proxy = await startChildProxy({ cli: DIST_CLI, home, env });
    client = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'bundle.pem'), 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
    google?.close();
    for (const text of [...bodies, proxy?.stdout() ?? '', proxy?.stderr() ?? '']) expect(findLeak(text, VALUE)).toBeUndefined();
  });

  it("the secret's latest version is injected, read with a token minted from the service account's key", async () => {
    expect((await get('api.example.test')).status).toBe(200);
    expect(accessed).toEqual([`/v1/projects/${PROJECT}/secrets/github-token/versions/latest:access`]);
  });

  it("store.key on Cloud KMS: a new home's master key is wrapped by the key, only its ciphertext kept, and the store opens with it", async () => {
    const wrappedHome = makeHome();
    mkdirSync(join(wrappedHome, 'config'), { recursive: true });
    writeFileSync(
      join(wrappedHome, 'config', 'keyway.yaml'),
      stringify({
        store: { key: { kms: 'gcp', key_id: KMS_KEY, endpoint: google.address() ? `https://localhost:${(google.address() as AddressInfo).port}` : '' } },
      }),
    );
    const env = cleanEnv({ GOOGLE_APPLICATION_CREDENTIALS: join(home, 'sa.json'), NODE_EXTRA_CA_CERTS: TLS_FIXTURES.caPath });
    const cli = (args: string[], stdin?: string) => runCli([...args, '--home', wrappedHome], env, stdin);
    expect((await cli(['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    expect((await cli(['secrets', 'set', 'api', '--stdin'], VALUE)).code).toBe(0);
    expect(existsSync(join(wrappedHome, 'data', 'master.key'))).toBe(false);
    const file = JSON.parse(readFileSync(join(wrappedHome, 'data', 'master.key.kms'), 'utf8')) as { kms: string; ciphertext: string };
    expect(file.kms).toBe('gcp');
    // The key, as the KMS alone can give it, is in no file of the home.
    const blob = Buffer.from(file.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', kmsKey, blob.subarray(0, 12));
    decipher.setAuthTag(blob.subarray(blob.length - 16));
    const key = Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
    const files = readdirSync(wrappedHome, { recursive: true, encoding: 'utf8' })
      .map((n) => join(wrappedHome, n))
      .filter((p) => statSync(p).isFile());
    expect(files.filter((p) => readFileSync(p).includes(key) || readFileSync(p, 'latin1').includes(key.toString('base64')))).toEqual([]);
    const listed = await cli(['grants', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse((await cli(['key', 'status', '--json'])).stdout)).toMatchObject({ kept: 'kms', kms_key_id: KMS_KEY });
  });

  it("a secret that is not there, and a key the token endpoint refuses: 502 secret_unavailable with Google's reason, nothing sent", async () => {
    const before = upstream.seen.length;
    const missing = await get('other.example.test');
    expect(missing).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect((JSON.parse(missing.text) as { error: { message: string } }).error.message).toMatch(/Secret Manager answered 404: NOT_FOUND/);
    const stranger = await get('tunnel.example.test');
    expect(stranger).toMatchObject({ status: 502, code: 'secret_unavailable' });
    expect((JSON.parse(stranger.text) as { error: { message: string } }).error.message).toMatch(/the service account's token could not be had/);
    expect(refusedAssertions.length).toBeGreaterThan(0);
    expect(upstream.seen.length).toBe(before);
  });
});
