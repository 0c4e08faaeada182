// Client certificate material (mtls): PEM read with Node's crypto, PKCS#12 opened with node-forge,
// refusals in one line that never quotes the key, the bundle or the passphrase.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateWarning, loadClientCertificate } from '../../src/credentials/client-certificate.ts';
import { parseMaterial } from '../../src/credentials/types/index.ts';
import { parseSecretInput } from '../../src/operations/secret-input.ts';
import { issueClientCert, makeTestCa } from '../helpers/client-ca.ts';
import { CANARY } from '../helpers/fixtures.ts';

const PASS = `${CANARY}-pass`;
const DAY = 86_400_000;
const ca = makeTestCa('unit CA');
const cert = issueClientCert(ca, 'unit-client');
const other = issueClientCert(ca, 'other-client');

/** The message of what `fn` throws, checked to quote none of the secrets. */
function refusal(fn: () => unknown): string {
  let message = '';
  try {
    fn();
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).not.toBe('');
  expect(message).not.toContain(CANARY);
  expect(message).not.toContain('PRIVATE KEY');
  return message;
}

function p12(legacy: boolean, passphrase: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-p12-'));
  writeFileSync(join(dir, 'c.pem'), cert.certPem);
  writeFileSync(join(dir, 'k.pem'), cert.keyPem);
  const args = ['pkcs12', '-export', ...(legacy ? ['-legacy'] : []), '-in', join(dir, 'c.pem'), '-inkey', join(dir, 'k.pem'), '-out', join(dir, 'b.p12')];
  execFileSync('openssl', [...args, '-passout', `pass:${passphrase}`]);
  return readFileSync(join(dir, 'b.p12')).toString('base64');
}

describe('mtls material', () => {
  it('takes PEM, plain or encrypted with its passphrase, and reads subject and expiry', () => {
    const plain = parseMaterial('mtls', JSON.stringify({ certificate: cert.certPem, private_key: cert.keyPem }));
    const loaded = loadClientCertificate(plain as never, 'x');
    expect(loaded).toMatchObject({ ok: true, subject: 'CN=unit-client' });
    expect(loaded.ok && loaded.notAfter).toBeGreaterThan(Date.now() + 80 * DAY);
    const encrypted = parseMaterial('mtls', JSON.stringify({ certificate: cert.certPem, privateKey: cert.encryptedKeyPem(PASS), passphrase: PASS }));
    expect(loadClientCertificate(encrypted as never, 'x').ok).toBe(true);
  });

  it('refuses a wrong or missing passphrase, a key of another certificate, what is not PEM', () => {
    const m = (extra: object) => JSON.stringify({ certificate: cert.certPem, privateKey: cert.encryptedKeyPem(PASS), ...extra });
    expect(refusal(() => parseMaterial('mtls', m({ passphrase: `${CANARY}-wrong` })))).toMatch(/wrong passphrase/);
    expect(refusal(() => parseMaterial('mtls', m({})))).toMatch(/encrypted: give its passphrase/);
    expect(refusal(() => parseMaterial('mtls', JSON.stringify({ certificate: cert.certPem, privateKey: other.keyPem })))).toMatch(/does not belong/);
    expect(refusal(() => parseMaterial('mtls', JSON.stringify({ certificate: `${CANARY}`, privateKey: cert.keyPem })))).toMatch(/not PEM/);
    expect(refusal(() => parseMaterial('mtls', CANARY))).toMatch(/JSON object/);
  });

  it('opens PKCS#12 bundles, AES (OpenSSL 3) and legacy, into PEM; a wrong passphrase or a corrupt bundle is refused', () => {
    for (const legacy of [false, true]) {
      const pem = parseSecretInput('mtls', { pkcs12: p12(legacy, PASS), passphrase: PASS });
      expect(loadClientCertificate(pem as never, 'x')).toMatchObject({ ok: true, subject: 'CN=unit-client' });
    }
    expect(refusal(() => parseSecretInput('mtls', { pkcs12: p12(false, PASS), passphrase: `${CANARY}-no` }))).toMatch(/wrong passphrase/);
    expect(refusal(() => parseSecretInput('mtls', { pkcs12: Buffer.from(`${CANARY} junk`).toString('base64') }))).toMatch(/cannot be read/);
  });

  it('opens PKCS#12 bundles of EC (P-256) and Ed25519 certificates, which node-forge alone cannot read (issue 48)', () => {
    for (const algorithm of [
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-newkey', 'ed25519'],
    ]) {
      const dir = mkdtempSync(join(tmpdir(), 'keyway-p12-'));
      const [c, k, b] = ['c.pem', 'k.pem', 'b.p12'].map((f) => join(dir, f)) as [string, string, string];
      execFileSync('openssl', ['req', '-x509', ...algorithm, '-nodes', '-days', '1', '-subj', '/CN=unit-ec', '-keyout', k, '-out', c], { stdio: 'ignore' });
      execFileSync('openssl', ['pkcs12', '-export', '-in', c, '-inkey', k, '-out', b, '-passout', `pass:${PASS}`]);
      const pem = parseSecretInput('mtls', { pkcs12: readFileSync(b).toString('base64'), passphrase: PASS }) as { privateKey: string };
      expect(loadClientCertificate(pem as never, 'x'), algorithm[1]).toMatchObject({ ok: true, subject: 'CN=unit-ec' });
      expect(pem.privateKey).toContain('BEGIN PRIVATE KEY');
    }
  });

  it('warns 14 days ahead and once expired', () => {
    const now = Date.now();
    const loaded = loadClientCertificate({ certificate: cert.certPem, privateKey: cert.keyPem }, 'x');
    if (!loaded.ok) throw new Error('not loaded');
    expect(certificateWarning(loaded, now)).toBeUndefined();
    expect(certificateWarning(loaded, loaded.notAfter - 13 * DAY)).toMatch(/expires at/);
    expect(certificateWarning(loaded, loaded.notAfter + 1)).toMatch(/expired at/);
  });
});

describe('jwt material', () => {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  it('takes a JWT with or without exp; refuses what is not one', () => {
    expect(parseMaterial('jwt', `${part({ alg: 'none' })}.${part({ exp: 2_000_000_000 })}.\n`)).toBe(
      `${part({ alg: 'none' })}.${part({ exp: 2_000_000_000 })}.`,
    );
    expect(parseMaterial('jwt', `${part({})}.${part({ sub: 'x' })}.sig`)).toBeTypeOf('string');
    expect(refusal(() => parseMaterial('jwt', `${CANARY}.x`))).toMatch(/three base64url parts/);
    expect(refusal(() => parseMaterial('jwt', `${part({})}.${part([CANARY])}.s`))).toMatch(/JSON object/);
    expect(refusal(() => parseMaterial('jwt', `${part({})}.${part({ exp: CANARY })}.s`))).toMatch(/"exp" must be a number/);
  });
});
