import { ProxyError } from '../../../errors/index.ts';
import type { Grant } from '../../grant.ts';
import type { Credential, SecretMaterial } from '../../material.ts';
import type { MaterialIssuer, RenewContext } from '../issuer.ts';
import { AwsRoleCredentials } from './role.ts';
import type { AssumeRole, AwsSigning } from './signing/config.ts';

// How an aws_sigv4 grant's credential is issued: its stored key as it is, or, with assume_role,
// the role's temporary credentials, which the key only ever signs the AssumeRole call for (role.ts).

type AwsKey = Extract<Credential, { kind: 'aws' }>;

/** The role an aws_sigv4 grant signs as, as its kind compiled its settings; undefined: it signs with its key. */
const roleOf = (grant: Grant): AssumeRole | undefined => (grant.type === 'aws_sigv4' ? (grant.settings as AwsSigning).assumeRole : undefined);

/** The held key, and the role it assumes; a grant with no role never gets here (renewsFor). */
function keyAndRole(grant: Grant, held: Credential): { key: AwsKey; role: AssumeRole } {
  const role = roleOf(grant);
  if (role === undefined || held.kind !== 'aws') throw new ProxyError('internal_error', `grant "${grant.id}" assumes no role with an AWS key`);
  return { key: held, role };
}

const keyOf = (m: SecretMaterial): Credential | undefined =>
  typeof m === 'object' && 'secretAccessKey' in m
    ? { kind: 'aws', accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey, sessionToken: m.sessionToken }
    : undefined;

export const awsIssuer: MaterialIssuer = {
  by: 'material',
  credential: keyOf,
  // A request signed again after a 401 would need its body again: not replayed.
  refetchReplays: false,
  renews: {
    renewsFor: (grant) => roleOf(grant) !== undefined,
    get: async (grant, held, context: RenewContext) => {
      const { key, role } = keyAndRole(grant, held);
      return new AwsRoleCredentials(context).get(grant, role, key);
    },
    renewNow: async (grant, held, context) => {
      const { key, role } = keyAndRole(grant, held);
      return (await new AwsRoleCredentials(context).refreshNow(grant, role, key)).expiresAt;
    },
  },
};
