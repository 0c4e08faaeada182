import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

export const TLS_FIXTURES = {
  caPath: `${dir}upstream-ca.pem`,
  ca: readFileSync(`${dir}upstream-ca.pem`, 'utf8'),
  cert: readFileSync(`${dir}upstream.pem`, 'utf8'),
  key: readFileSync(`${dir}upstream-key.pem`, 'utf8'),
  untrustedCert: readFileSync(`${dir}untrusted.pem`, 'utf8'),
  untrustedKey: readFileSync(`${dir}untrusted-key.pem`, 'utf8'),
};

/** A secret planted in every test: it must never show up in any output a test collects. */
export const CANARY = 'kw-canary-7f3a9c1e5b2d';
