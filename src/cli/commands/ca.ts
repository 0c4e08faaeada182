import { resolve } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import { loadExistingCa } from '../../tls/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';
import { resolveHome } from '../../paths.ts';

export const ca: Command = {
  name: 'ca',
  usage: `keyway ca [--pem] [--json] [--home DIR]

Prints where keyway's CA certificate is and its SHA-256 fingerprint; --pem prints the certificate.
Only shows the CA: when the home has none yet, says so (\`keyway init\` or \`keyway start\` makes it).`,
  async run(argv, io) {
    const args = parse(argv, { pem: { type: 'boolean' } });
    const home = resolveHome(args.string('home'), io.env);
    const authority = await loadExistingCa(resolve(home, 'certs'));
    if (!authority) throw new KeywayError('ca_invalid', `no CA yet in ${home}; \`keyway init\` (or \`keyway start\`) makes one`);
    if (args.flag('pem')) io.out(authority.certPem.trimEnd());
    else if (args.json)
      printJson(io, {
        path: authority.certPath,
        bundle: authority.bundlePath,
        fingerprint256: authority.fingerprint256,
        not_after: authority.notAfter.toISOString(),
      });
    else io.out(`${authority.certPath}\nSHA-256 ${authority.fingerprint256}\nbundle ${authority.bundlePath}`);
    return 0;
  },
};
