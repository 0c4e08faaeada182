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
