// A client certificate (mTLS) for a stored grant: `keyway secrets set ID --client-certificate FILE
// --client-key FILE` (or --pkcs12 FILE). For an mtls grant it is the grant's secret; any other grant
// carries it in a sealed record of its own beside its secret (credentials/grant-record.ts).
import { clientCertificateFields } from '../credentials/client-certificate.ts';
import { clientCertificateRecordId, grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import { KINDS } from '../credentials/types/index.ts';
import { KeywayError } from '../errors/index.ts';
import { usage } from './fields.ts';
import { showGrant, type GrantServices, type GrantResult } from './grants.ts';
import { withPemCertificate } from './secret-input.ts';
import { setSecret } from './secrets.ts';

export type ClientCertificateInput = { certificate: string; privateKey: string; passphrase?: string } | { pkcs12: string; passphrase?: string };

export async function setClientCertificate(services: GrantServices, id: string, input: ClientCertificateInput): Promise<GrantResult> {
  if (services.config.grants[id]) {
    throw new KeywayError('conflict', `grant "${id}" is defined in the config; give it client_certificate: there`);
  }
  const grant = services.store.get<StoredGrant>(grantRecordId(id));
  if (!grant) throw new KeywayError('not_found', `no grant "${id}"; add it with \`keyway grants add ${id} --type … --domains …\``);
  if (KINDS[grant.type].wire.by === 'connection') {
    const { grant: row } = await setSecret(services, id, input);
    return { grant: row, warnings: [] };
  }
  let material: ReturnType<typeof clientCertificateFields>;
  try {
    material = clientCertificateFields(withPemCertificate(input) as Record<string, unknown>, 'client certificate');
  } catch (err) {
    throw usage((err as Error).message);
  }
  await services.store.update((draft) => {
    if (!draft.get(grantRecordId(id))) throw new KeywayError('not_found', `no grant "${id}"`);
    draft.set(clientCertificateRecordId(id), material);
  });
  return { grant: showGrant(services, id), warnings: [] };
}

/** Takes a client certificate off a grant that carries one beside its secret (an mtls grant's is its secret). */
export async function removeClientCertificate(services: GrantServices, id: string): Promise<GrantResult> {
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; remove client_certificate: there`);
  const grant = services.store.get<StoredGrant>(grantRecordId(id));
  if (!grant) throw new KeywayError('not_found', `no grant "${id}"`);
  if (KINDS[grant.type].wire.by === 'connection')
    throw usage(`grant "${id}" is an mtls grant: its certificate is its secret (set another, or remove the grant)`);
  const removed = await services.store.update((draft) => draft.delete(clientCertificateRecordId(id)));
  if (!removed) throw new KeywayError('not_found', `grant "${id}" has no client certificate`);
  return { grant: showGrant(services, id), warnings: [] };
}
