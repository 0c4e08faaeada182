// Every documented material form, as `keyway secrets set --stdin` (and the admin API) take it
// (issue 36, item 12): a PEM in a JSON string may be written with \n escapes or pasted as it is,
// line breaks and all; both are the one reading of what the person meant.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMaterial } from '../../src/credentials/material.ts';

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
