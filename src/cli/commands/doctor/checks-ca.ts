// The CA files: certs/ca.pem, certs/ca-key.pem (and its mode) and certs/bundle.pem.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { errCode, type CheckResult } from './context.ts';

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function checkCaCert(caPath: string, keyPath: string): Promise<{ result: CheckResult; cert?: X509Certificate; pem?: string }> {
  const check = 'CA certificate';
  let pem: string | undefined;
  try {
    pem = await readIfExists(caPath);
  } catch (err) {
    return {
      result: { check, status: 'fail', detail: `${caPath} cannot be read (${errCode(err)})`, fix: 'give the user running keyway read access to certs/' },
    };
  }
  if (pem === undefined) {
    const keyExists = (await readIfExists(keyPath).catch(() => 'unreadable')) !== undefined;
    return {
      result: {
        check,
        status: 'fail',
        detail: `${caPath} is missing`,
        fix: keyExists
          ? 'restore certs/ca.pem from a backup; or delete certs/ca-key.pem too and run `keyway init` for a new CA (every client must then trust the new one)'
          : 'run `keyway init` (or start keyway once) to make the CA',
      },
    };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return { result: { check, status: 'fail', detail: `${caPath} is not a PEM certificate`, fix: 'restore certs/ca.pem from a backup' } };
  }
  if (!cert.ca) return { result: { check, status: 'fail', detail: `${caPath} is not a CA certificate`, fix: 'restore certs/ca.pem from a backup' } };
  const until = new Date(cert.validTo);
  if (until.getTime() <= Date.now()) {
    return {
      result: {
        check,
        status: 'fail',
        detail: `${caPath} expired on ${until.toISOString().slice(0, 10)}`,
        fix: 'make a new CA: move certs/ aside, run `keyway init`, and trust the new CA in your clients',
      },
      cert,
      pem,
    };
  }
  return { result: { check, status: 'ok', detail: `${caPath}, valid until ${until.toISOString().slice(0, 10)}, SHA-256 ${cert.fingerprint256}` }, cert, pem };
}

export async function checkCaKey(keyPath: string, cert: X509Certificate | undefined): Promise<CheckResult> {
  const check = 'CA private key';
  let pem: string | undefined;
  try {
    pem = await readIfExists(keyPath);
  } catch (err) {
    return { check, status: 'fail', detail: `${keyPath} cannot be read (${errCode(err)})`, fix: 'run doctor as the user that runs keyway' };
  }
  if (pem === undefined) {
    const fix =
      cert === undefined
        ? 'run `keyway init` (or start keyway once) to make the CA'
        : 'restore it from a backup, or make a new CA (move certs/ aside and run `keyway init`)';
    return { check, status: 'fail', detail: `${keyPath} is missing`, fix };
  }
  const mode = (await stat(keyPath)).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    return {
      check,
      status: 'fail',
      detail: `${keyPath} has mode ${mode.toString(8).padStart(4, '0')}: others may read the key that signs every certificate keyway makes`,
      fix: `chmod 600 ${keyPath}`,
    };
  }
  try {
    const key = createPrivateKey(pem);
    if (cert !== undefined && !cert.checkPrivateKey(key)) {
      return {
        check,
        status: 'fail',
        detail: `${keyPath} is not the key of certs/ca.pem`,
        fix: 'restore the matching pair of certs/ca.pem and certs/ca-key.pem',
      };
    }
  } catch {
    return { check, status: 'fail', detail: `${keyPath} is not a PEM private key`, fix: 'restore it from a backup' };
  }
  return { check, status: 'ok', detail: `${keyPath}, mode 0${mode.toString(8)}${cert === undefined ? '' : ', matches the certificate'}` };
}

function pemBodies(text: string): Set<string> {
  const bodies = new Set<string>();
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) bodies.add((m[1] ?? '').replace(/\s+/g, ''));
  return bodies;
}

export async function checkBundle(bundlePath: string, cert: X509Certificate | undefined): Promise<CheckResult> {
  const check = 'CA bundle';
  let text: string | undefined;
  try {
    text = await readIfExists(bundlePath);
  } catch (err) {
    return { check, status: 'fail', detail: `${bundlePath} cannot be read (${errCode(err)})`, fix: 'give your clients read access to certs/bundle.pem' };
  }
  if (text === undefined)
    return { check, status: 'fail', detail: `${bundlePath} is missing`, fix: 'start keyway (or run `keyway init`): it writes the bundle' };
  const bodies = pemBodies(text);
  if (cert === undefined) return { check, status: 'skip', detail: `${bundlePath} holds ${bodies.size} certificates; not compared: no CA certificate` };
  if (!bodies.has(cert.raw.toString('base64'))) {
    return {
      check,
      status: 'fail',
      detail: `${bundlePath} does not hold keyway's CA: clients using it will refuse every intercepted host`,
      fix: 'delete certs/bundle.pem and start keyway (or run `keyway init`) to write it again',
    };
  }
  return { check, status: 'ok', detail: `${bundlePath}, ${bodies.size} certificates including keyway's CA` };
}
