// Every documented material form, as `keyway secrets set --stdin` (and the admin API) take it
// (issue 36, item 12): a PEM in a JSON string may be written with \n escapes or pasted as it is,
// line breaks and all; both are the one reading of what the person meant.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMaterial } from '../../src/credentials/types/index.ts';
import { reflowPem } from '../../src/credentials/material-text.ts';
import { keywayKey } from '../../src/credentials/types/json-keys.ts';

const cert = readFileSync(new URL('../fixtures/tls/upstream.pem', import.meta.url), 'utf8');
const key = readFileSync(new URL('../fixtures/tls/upstream-key.pem', import.meta.url), 'utf8');

describe('secret material with PEMs in JSON', () => {
  it('mtls: the documented {"certificate","privateKey"} with \\n escapes, and with the PEMs pasted raw', () => {
    const escaped = JSON.stringify({ certificate: cert, privateKey: key });
    const raw = `{"certificate":"${cert.trim()}",\n"privateKey":"${key.trim()}"}`;
    for (const text of [escaped, raw, `${raw}\n`]) {
      const material = parseMaterial('mtls', text) as { certificate: string; privateKey: string };
      expect(material.certificate.trim()).toBe(cert.trim());
      expect(material.privateKey.trim()).toBe(key.trim());
    }
  });

  it('snake_case keys too, and JSON that is broken in another way is still refused without quoting it', () => {
    expect(() => parseMaterial('mtls', JSON.stringify({ certificate: cert, private_key: key }))).not.toThrow();
    expect(() => parseMaterial('mtls', '{"certificate": "x"')).toThrow(/an mtls secret is a JSON object \{"certificate","privateKey","passphrase"\?\}/);
  });

  it('github_app: a private key pasted raw inside the JSON', () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const material = parseMaterial('github_app', `{"appId": 123456, "privateKey": "${pem.trim()}"}`) as { privateKey: string };
    expect(material.privateKey.trim()).toBe(pem.trim());
  });
});

describe('a PEM whose line breaks were dropped or changed (reflowPem)', () => {
  const lines = (pem: string) => pem.trim().split('\n');
  it('is written as PEM again: one line, spaces, CRLF, and a chain of two', () => {
    for (const broken of [cert.replace(/\n/g, ''), cert.replace(/\n/g, ' '), cert.replace(/\n/g, '\r\n')]) {
      expect(lines(reflowPem(broken))).toEqual(lines(cert));
    }
    const chain = reflowPem(`${cert}${cert}`.replace(/\n/g, ''));
    expect(chain.match(/-----BEGIN CERTIFICATE-----\n/g)).toHaveLength(2);
    expect(chain).toContain('-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----');
  });

  it('leaves a block with headers (a legacy encrypted key) and text that is no PEM as they are', () => {
    const legacy = '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----';
    expect(reflowPem(legacy)).toBe(legacy);
    expect(reflowPem('not a pem')).toBe('not a pem');
  });

  it('one-line PEMs in an mtls secret are read (what the dashboard’s one-line field sends)', () => {
    const text = JSON.stringify({ certificate: cert.replace(/\n/g, ''), privateKey: key.replace(/\n/g, '') });
    const material = parseMaterial('mtls', text) as { certificate: string; privateKey: string };
    expect(lines(material.certificate)).toEqual(lines(cert));
  });
});

describe("a secret's JSON keys are read as its own, never as an object's built-ins", () => {
  it('"__proto__" does not lend a key to the form (an oauth2 secret with no token of its own is refused)', () => {
    const text = '{"__proto__": {"refreshToken": "from-the-prototype"}, "clientId": "c"}';
    expect(() => parseMaterial('oauth2', text)).toThrow('oauth2 secret: needs "refreshToken" or "accessToken"');
  });

  it('"constructor" and "toString" are keys like any other: not spellings of a keyway key', () => {
    for (const key of ['constructor', 'toString', '__proto__']) expect(keywayKey(key)).toBe(key);
    expect(keywayKey('refresh_token')).toBe('refreshToken');
  });
});
