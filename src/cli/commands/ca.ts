import { resolve } from 'node:path';
import { loadOrCreateCa } from '../../tls/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';
import { resolveHome } from '../../paths.ts';

export const ca: Command = {
  name: 'ca',
  usage: `keyway ca [--pem] [--json] [--home DIR]

Prints where keyway's CA certificate is and its SHA-256 fingerprint; --pem prints the certificate.
Makes the CA if there is none yet.`,
  async run(argv, io) {
    const args = parse(argv, { pem: { type: 'boolean' } });
    const authority = await loadOrCreateCa(resolve(resolveHome(args.string('home'), io.env), 'certs'));
    if (args.flag('pem')) io.out(authority.certPem.trimEnd());
    else if (args.json) printJson(io, { path: authority.certPath, bundle: authority.bundlePath, fingerprint256: authority.fingerprint256, not_after: authority.notAfter.toISOString() });
    else io.out(`${authority.certPath}\nSHA-256 ${authority.fingerprint256}\nbundle ${authority.bundlePath}`);
    return 0;
  },
};
