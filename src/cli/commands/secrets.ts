import { readFileSync } from 'node:fs';
import { setSecret } from '../../operations/secrets.ts';
import { removeClientCertificate, setClientCertificate, type ClientCertificateInput } from '../../operations/client-certificate.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { usageError } from '../io.ts';

export const secrets: Command = {
  name: 'secrets',
  usage: `keyway secrets set ID [--value TEXT | --stdin]
       keyway secrets set ID --client-certificate CERT.pem --client-key KEY.pem [--stdin]
       keyway secrets set ID --pkcs12 BUNDLE.p12 [--stdin]
       keyway secrets set ID --remove-client-certificate

Sets the secret of grant ID (made with \`keyway grants add\`). A plain string for api_key and
bearer; for basic, username:password or a JSON object {"username","password"}; a JSON object for oauth2 ({"clientId","clientSecret",
"refreshToken","accessToken","expiresAt","scopes"}, camelCase or snake_case) and client_credentials.
When no grant ID exists and ID names a provider preset (spotify, SPOTIFY_OAUTH, github, …), an
oauth2 grant named after the preset is made with the preset's endpoints and domains.
A jwt secret is the token (its exp is read: an expired token is never sent). An mtls secret is a
client certificate: give the PEM files (--client-certificate, the chain; --client-key, the key) or a
PKCS#12 bundle (--pkcs12); with --stdin the key's or bundle's passphrase is read from stdin. Any
other grant given these flags keeps its secret and presents the certificate too, until
--remove-client-certificate. Or, with --stdin alone, the JSON {"certificate","privateKey",
"passphrase"?} or {"pkcs12","passphrase"?}. JSON objects too: aws_sigv4 {"accessKeyId",
"secretAccessKey","sessionToken"?}, hmac {"key","keyId"?,"passphrase"?}, github_app {"appId",
"privateKey","installationId"?}; google_service_account takes the key file as Google gives it.
A PEM in JSON may have \\n escapes or be pasted as it is, line breaks and all.
Prefer --stdin: a --value shows in shell history and ps. The value is never printed back.`,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        value: { type: 'string' },
        stdin: { type: 'boolean' },
        'client-certificate': { type: 'string' },
        'client-key': { type: 'string' },
        pkcs12: { type: 'string' },
        'remove-client-certificate': { type: 'boolean' },
      },
      { set: 1 },
    );
    // `keyway secrets ID` (no set) is no form: the words are set and the grant's id (args.ts).
    const [, name] = args.positionals;
    if (!name) throw usageError('usage: keyway secrets set ID [--value TEXT | --stdin]');
    if (args.flag('remove-client-certificate')) {
      const services = await servicesFor(args, io);
      await audited(services, io, { action: 'grants.remove_client_certificate', grant: name, changed: ['client_certificate'] }, () =>
        removeClientCertificate(services, name),
      );
      io.out(args.json ? JSON.stringify({ grant: name, client_certificate: 'removed' }) : `client certificate removed from grant ${name}`);
      return 0;
    }
    const certFile = args.string('client-certificate');
    const keyFile = args.string('client-key');
    const p12File = args.string('pkcs12');
    if (certFile !== undefined || keyFile !== undefined || p12File !== undefined) {
      if (args.string('value') !== undefined) throw usageError('--value does not go with a client certificate (--stdin reads its passphrase)');
      if (p12File !== undefined && (certFile !== undefined || keyFile !== undefined))
        throw usageError('give --pkcs12, or --client-certificate with --client-key, not both');
      if (p12File === undefined && (certFile === undefined || keyFile === undefined)) throw usageError('--client-certificate and --client-key go together');
      const read = (file: string, encoding: 'utf8' | 'base64') => {
        try {
          return readFileSync(file).toString(encoding);
        } catch (err) {
          throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      };
      const passphrase = args.flag('stdin') ? (await io.readStdin()).replace(/\r?\n$/, '') : undefined;
      const given: ClientCertificateInput =
        p12File !== undefined
          ? { pkcs12: read(p12File, 'base64'), ...(passphrase !== undefined ? { passphrase } : {}) }
          : { certificate: read(certFile!, 'utf8'), privateKey: read(keyFile!, 'utf8'), ...(passphrase !== undefined ? { passphrase } : {}) };
      const services = await servicesFor(args, io);
      const { grant } = await audited(services, io, { action: 'grants.set_client_certificate', grant: name, changed: ['client_certificate'] }, () =>
        setClientCertificate(services, name, given),
      );
      const row = grant as { id: string; client_certificate_expires_at?: string | null };
      io.out(
        args.json
          ? JSON.stringify({ grant: row.id, client_certificate: 'set', expires_at: row.client_certificate_expires_at ?? null })
          : `client certificate set for grant ${row.id}${row.client_certificate_expires_at ? ` (expires ${row.client_certificate_expires_at})` : ''}`,
      );
      return 0;
    }
    const value = args.string('value');
    if ((value === undefined) === !args.flag('stdin')) throw usageError('give the secret with exactly one of --value or --stdin');
    const input = value ?? (await io.readStdin());
    const services = await servicesFor(args, io);
    // The operation is shared with PUT /api/grants/{grant}/secret (src/operations/secrets.ts).
    const { grant, created, warnings } = await audited(services, io, { action: 'grants.set_secret', grant: name, changed: ['secret'] }, () =>
      setSecret(services, name, input),
    );
    const message = created ? `made grant ${grant.id} from the ${grant.id} preset and set its secret` : `secret set for grant ${grant.id}`;
    io.out(args.json ? JSON.stringify({ grant: grant.id, secret: 'set', created }) : message);
    for (const line of warnings) io.err(line);
    return 0;
  },
};
