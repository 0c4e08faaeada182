// The real AWS clients the signing tests drive, pointed straight at a loopback double (no keyway):
// the JS SDK v3 with an https.Agent that trusts only the test CA and resolves the test's AWS-shaped
// names to 127.0.0.1 (and refuses any other name, so nothing real is ever looked up), Debian's
// `aws` CLI and boto3 (/usr/bin/python3) under a clean environment with AWS_CA_BUNDLE set.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { Agent as UndiciAgent } from 'undici';
import { TLS_FIXTURES } from './fixtures.ts';
import { AWS_TEST_HOSTS } from './test-leaf.ts';
import { slack } from './load.ts';

export interface AwsTestKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The Debian programs (not whatever `aws` or `python3` is first on PATH, e.g. a pyenv shim). */
export const AWS_CLI = '/usr/bin/aws';
export const PYTHON = '/usr/bin/python3';
const BOTO3_SCRIPT = fileURLToPath(new URL('./boto3-s3.py', import.meta.url));

/** Resolves the test's AWS-shaped names (and their bucket subdomains) and *.example.test to 127.0.0.1; fails any other. */
export const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  const known = hostname === 'localhost' || hostname.endsWith('.example.test') || AWS_TEST_HOSTS.some((h) => hostname === h || hostname.endsWith(`.${h}`));
  if (!known) {
    callback(Object.assign(new Error(`test lookup refuses ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
    return;
  }
  if (options.all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

export function testHttpsAgent(): HttpsAgent {
  return new HttpsAgent({ ca: TLS_FIXTURES.ca, lookup: loopbackLookup, keepAlive: true });
}

/** undici (fetch) dispatcher with the same trust and lookup, for presigned URLs. */
export function testUndiciAgent(): UndiciAgent {
  return new UndiciAgent({ connect: { ca: TLS_FIXTURES.ca, lookup: loopbackLookup } });
}

export function jsS3Client(endpoint: string, key: AwsTestKey, options: { forcePathStyle?: boolean; agent?: HttpsAgent } = {}): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: options.forcePathStyle ?? true,
    credentials: key,
    maxAttempts: 1,
    requestHandler: { httpsAgent: options.agent ?? testHttpsAgent(), connectionTimeout: slack(5_000, 30_000), requestTimeout: slack(20_000, 90_000) },
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with exactly `env` (no inherited CA bundles or AWS settings), bounded in time. */
export function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** A temp HOME with an AWS config (path-style addressing, no retries) and the env that uses it. */
export interface AwsEnv {
  env: Record<string, string>;
  dir: string;
  cleanup(): void;
}

export function awsEnv(key: AwsTestKey, caPath = TLS_FIXTURES.caPath): AwsEnv {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-aws-'));
  writeFileSync(join(dir, 'config'), '[default]\nregion = us-east-1\nretry_mode = standard\nmax_attempts = 1\ns3 =\n    addressing_style = path\n');
  writeFileSync(join(dir, 'credentials'), '');
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    AWS_CONFIG_FILE: join(dir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
    AWS_ACCESS_KEY_ID: key.accessKeyId,
    AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CA_BUNDLE: caPath,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    ...(key.sessionToken !== undefined ? { AWS_SESSION_TOKEN: key.sessionToken } : {}),
  };
  return { env, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs test/helpers/boto3-s3.py OP ARGS... with /usr/bin/python3 against `endpoint`. */
export function boto3(endpoint: string, aws: AwsEnv, args: string[]): Promise<RunResult> {
  return run(PYTHON, [BOTO3_SCRIPT, endpoint, ...args], aws.env);
}
