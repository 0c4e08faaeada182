// audit.export in the config: what each format may travel over, and every other URL refused naming the field.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { thrownMessage } from '../../helpers/thrown.ts';

const load = (exports: unknown, extra: Record<string, unknown> = {}) => parseConfig({ audit: { export: exports }, ...extra }, '/home/test');

describe('audit.export', () => {
  it('takes syslog and cef over syslog+tcp/tls/udp, ocsf over https, and defaults to none', () => {
    expect(parseConfig({}, '/home/test').audit.export).toEqual([]);
    const targets = [
      { format: 'syslog', to: 'syslog+tcp://siem.example.com:601' },
      { format: 'cef', to: 'syslog+tls://siem.example.com:6514', ca: 'certs/siem-ca.pem' },
      { format: 'syslog', to: 'syslog+udp://[::1]:514' },
      { format: 'ocsf', to: 'https://siem.example.com/ingest/ocsf?source=keyway' },
    ];
    expect(load(targets).audit.export).toEqual(targets);
  });

  it('refuses an unknown format or scheme, a wrong pairing, a secret in the URL and a missing port, naming the field', () => {
    expect(thrownMessage(() => load([{ format: 'leef', to: 'syslog+tcp://h:1' }]))).toMatch(/audit\.export\.0\.format/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'tcp://h:1' }]))).toMatch(/audit\.export\.0\.to.*unknown scheme "tcp:"/s);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'not a url' }]))).toMatch(/audit\.export\.0\.to.*not a URL/s);
    expect(thrownMessage(() => load([{ format: 'ocsf', to: 'syslog+tcp://h:1' }]))).toMatch(/ocsf does not go over syslog\+tcp:/);
    expect(thrownMessage(() => load([{ format: 'cef', to: 'https://h/x' }]))).toMatch(/cef does not go over https:/);
    expect(thrownMessage(() => load([{ format: 'ocsf', to: 'https://user:pw@h/x' }]))).toMatch(/user or password/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'syslog+tcp://h' }]))).toMatch(/needs a port/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'syslog+udp://h:514/path' }]))).toMatch(/HOST:PORT only/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'syslog+tcp://h:1', ca: 'x.pem' }]))).toMatch(/audit\.export\.0\.ca/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'syslog+tcp://h:1', verify: false }]))).toMatch(/verify/);
  });

  it('is refused with the postgres audit sink (the table is not followed yet)', () => {
    const message = thrownMessage(() =>
      load([{ format: 'syslog', to: 'syslog+tcp://h:1' }], {
        store: { backend: 'postgres', url: 'env:PG' },
        audit: { sink: 'postgres', export: [{ format: 'syslog', to: 'syslog+tcp://h:1' }] },
      }),
    );
    expect(message).toMatch(/audit\.export.*audit\.sink file/s);
  });
});

describe('audit.export headers', () => {
  const hec = (headers: unknown) => load([{ format: 'ocsf', to: 'https://hec.example.com:8088/services/collector/raw', headers }]);

  it('takes each value by reference, with a format around it ({secret} by default)', () => {
    const [target] = hec({ Authorization: { secret: 'env:HEC_TOKEN', format: 'Splunk {secret}' }, 'X-Tenant': { secret: 'file:secrets/tenant' } }).audit.export;
    expect(target!.headers).toEqual({
      Authorization: { secret: { kind: 'env', name: 'HEC_TOKEN' }, format: 'Splunk {secret}' },
      'X-Tenant': { secret: { kind: 'file', path: 'secrets/tenant' }, format: '{secret}' },
    });
  });

  it('refuses a literal value, a format that could split the header or names {secret} twice, keyway’s own headers, and headers on syslog', () => {
    expect(thrownMessage(() => hec({ Authorization: { secret: 'Splunk abc123' } }))).toMatch(/audit\.export\.0\.headers\.Authorization\.secret/);
    expect(thrownMessage(() => hec({ Authorization: 'env:HEC_TOKEN' }))).toMatch(/audit\.export\.0\.headers\.Authorization/);
    expect(thrownMessage(() => hec({ Authorization: { secret: 'env:T', format: 'Splunk {secret}\r\nX-Evil: 1' } }))).toMatch(/printable text with \{secret\}/);
    expect(thrownMessage(() => hec({ Authorization: { secret: 'env:T', format: 'Splunk' } }))).toMatch(/printable text with \{secret\}/);
    expect(thrownMessage(() => hec({ Authorization: { secret: 'env:T', format: '{secret}{secret}' } }))).toMatch(/once/);
    // An allow-list: Authorization and X- names, never X-Forwarded-* or X-Keyway-*; the rest refused in one line.
    for (const name of [
      'Host',
      'content-length',
      'Transfer-Encoding',
      'Connection',
      'Proxy-Authorization',
      'Cookie',
      'Forwarded',
      'Via',
      'X-Forwarded-For',
      'x-keyway-purpose',
      'X-',
      'Referer',
    ])
      expect(thrownMessage(() => hec({ [name]: { secret: 'env:T' } }))).toMatch(/is not admitted: expected Authorization or an X- header/);
    for (const name of ['authorization', 'X-Splunk-Request-Channel', 'x-api-key'])
      expect(hec({ [name]: { secret: 'env:T' } }).audit.export[0]!.headers).toHaveProperty(name);
    expect(thrownMessage(() => hec({ 'Bad Name': { secret: 'env:T' } }))).toMatch(/HTTP header name/);
    expect(thrownMessage(() => hec({ 'X-A': { secret: 'env:T' }, 'x-a': { secret: 'env:U' } }))).toMatch(/named twice/);
    expect(thrownMessage(() => hec(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`X-H${i}`, { secret: 'env:T' }]))))).toMatch(/at most 8/);
    expect(thrownMessage(() => load([{ format: 'syslog', to: 'syslog+tcp://h:1', headers: { Authorization: { secret: 'env:T' } } }]))).toMatch(
      /audit\.export\.0\.headers.*https:\/\/ targets only/s,
    );
  });
});

describe('audit.export header values, read at each send', () => {
  it('refuses a secret that would split the request, naming the header and never the value', async () => {
    const { headerValues } = await import('../../../src/audit-export/headers.ts');
    const { readSecretRef } = await import('../../../src/config/secret-ref.ts');
    const from = (env: NodeJS.ProcessEnv) => (ref: Parameters<typeof readSecretRef>[0]) => readSecretRef(ref, env, '/home/test');
    const headers = { Authorization: { secret: { kind: 'env' as const, name: 'HEC' }, format: 'Splunk {secret}' } };
    expect(headerValues(headers, from({ HEC: 'tok-1' }))()).toEqual({ Authorization: 'Splunk tok-1' });
    // $& in a value is text, not a replacement pattern.
    expect(headerValues(headers, from({ HEC: 'a$&b' }))()).toEqual({ Authorization: 'Splunk a$&b' });
    for (const bad of ['tok\r\nX-Evil: 1', 'tok\nx', 'tok\u0000', 'tok\u00e9'])
      expect(thrownMessage(() => headerValues(headers, from({ HEC: bad }))())).toBe(
        'headers.Authorization: the secret holds a character a header cannot carry (a newline, a control or a non-ASCII character)',
      );
    const missing = thrownMessage(() => headerValues(headers, from({}))());
    expect(missing).toBe('headers.Authorization: environment variable HEC is not set');
  });
});
