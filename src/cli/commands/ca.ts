import { resolve } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import { importCa, loadExistingCa } from '../../tls/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson, usageError } from '../io.ts';
import { resolveHome } from '../../paths.ts';

export const ca: Command = {
  name: 'ca',
  usage: `keyway ca [--pem] [--json] [--home DIR]
keyway ca import CERT KEY [--json] [--home DIR]

Prints where keyway's CA certificate is and its SHA-256 fingerprint; --pem prints the certificate.
Only shows the CA: when the home has none yet, says so (\`keyway init\` or \`keyway start\` makes it).
\`ca import\` puts a CA made elsewhere (CERT and KEY: ca.pem and ca-key.pem of another home) into certs/,
so replicas behind one Service share one CA: checked as at start (RSA, a CA, key matching, not
expired). A home that already holds the same CA is left as it is; one holding another is refused.
There is no \`ca rotate\`: docs/commands.md (Replacing the CA) says how to replace the CA.`,
  async run(argv, io) {
    const args = parse(argv, { pem: { type: 'boolean' } }, { import: 2 });
    const home = resolveHome(args.string('home'), io.env);
    if (args.positionals[0] === 'import') {
      const [, certPath, keyPath, extra] = args.positionals;
      if (certPath === undefined || keyPath === undefined || extra !== undefined)
        throw usageError('usage: keyway ca import CERT KEY (ca.pem and ca-key.pem of the home that made the CA)');
      const { ca: imported, imported: written } = await importCa(resolve(home, 'certs'), { certPath: resolve(certPath), keyPath: resolve(keyPath) });
      if (args.json) printJson(io, { imported: written, path: imported.certPath, fingerprint256: imported.fingerprint256 });
      else io.out(`${written ? 'imported the CA into' : 'already holds this CA:'} ${imported.certPath}\nSHA-256 ${imported.fingerprint256}`);
      return 0;
    }
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
