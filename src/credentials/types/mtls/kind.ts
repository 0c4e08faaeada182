import { type ClientCertificateMaterial, clientCertificateFields } from '../../client-certificate.ts';
import { noInjector, refuseInjectSettings } from '../../injectors/index.ts';
import { blank, type GrantKind, noSettings, objectUsable } from '../kind.ts';

// mtls: a client certificate and key, presented on the grant's upstream connections; nothing goes
// on the request (the private key never leaves keyway: TLS proves possession without sending it).

export const mtls: GrantKind<'mtls'> = {
  type: 'mtls',
  shape: 'an mtls secret is a JSON object {"certificate","privateKey","passphrase"?} or {"pkcs12","passphrase"?} (or use --client-certificate)',
  object: ({ obj }) => clientCertificateFields(obj, 'mtls secret'),
  usable: objectUsable<ClientCertificateMaterial>(
    (m) => typeof m.certificate === 'string' && typeof m.privateKey === 'string' && !blank(m.certificate) && !blank(m.privateKey),
  ),
  // Nothing goes on the request: the connection presents the certificate (clientCertificate).
  issuer: { by: 'material', credential: () => ({ kind: 'none' }), refetchReplays: false },
  wire: {
    by: 'connection',
    injector: (inject) => {
      refuseInjectSettings(inject, 'an mtls grant presents a client certificate; it takes no --header, --format or --query', false);
      return noInjector();
    },
  },
  compile: noSettings,
  parsesConfigSecret: true,
};
