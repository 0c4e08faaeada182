import { ProxyError } from '../../../errors/index.ts';
import { awsRoleStateId, type AwsRoleState } from './role-state.ts';
import type { GrantRef } from '../../grant-ref.ts';
import type { Credential } from '../../material.ts';
import type { AssumeRole } from './signing/config.ts';
import { type Renewal, RenewalTooShort } from '../../issuing/renewer.ts';
import type { RenewContext } from '../issuer.ts';
import { assumeRole, StsError } from './sts-assume-role.ts';

type AwsKey = Extract<Credential, { kind: 'aws' }>;

export interface RoleCredential {
  credential: AwsKey;
  /** An STS call happened to produce it (for the audit line). */
  refreshed: boolean;
}

// The SDKs refresh role credentials 5 minutes before they expire; so does keyway, which leaves a
// request that starts just before the refresh time its whole duration to finish.
export const ROLE_REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * An aws_sigv4 grant's assume_role credentials: a Renewal (renewer.ts) whose fetch is an STS
 * AssumeRole call with the stored key, kept sealed in the store per grant, matched to the role,
 * external id and key they were assumed with. Credentials the store would not take are used from
 * memory (the stored key gets new ones any time, unlike a rotated refresh token). It holds nothing
 * itself: the process's one Renewer (in the context) keeps each grant's single flight and backoff.
 */
export class AwsRoleCredentials {
  readonly #o: RenewContext;

  constructor(context: RenewContext) {
    this.#o = context;
  }

  /** Temporary credentials valid beyond the refresh margin; calls STS first when due. */
  async get(grant: GrantRef, role: AssumeRole, key: AwsKey): Promise<RoleCredential> {
    const { state, renewed } = await this.#o.renewer.get(this.#renewal(grant, role, key));
    return { credential: credentialOf(state), refreshed: renewed };
  }

  /**
   * Assumes the role now, whatever the held credentials' expiry (`keyway refresh`, POST
   * /api/grants/{grant}/refresh): joins a call already in flight, else makes one, past any backoff.
   * Throws token_refresh_failed when STS fails (never falls back to the held credentials).
   */
  async refreshNow(grant: GrantRef, role: AssumeRole, key: AwsKey): Promise<AwsRoleState> {
    return (await this.#o.renewer.renewNow(this.#renewal(grant, role, key))).state;
  }

  #renewal(grant: GrantRef, role: AssumeRole, key: AwsKey): Renewal<AwsRoleState> {
    const { store, timeoutMs, dispatcher } = this.#o;
    return {
      grantId: grant.id,
      stored: () => store.get<AwsRoleState>(awsRoleStateId(grant.id)),
      isFor: (state) => state.roleArn === role.roleArn && state.externalId === role.externalId && state.sourceKeyId === key.accessKeyId,
      expiresAt: (state) => state.expiresAt,
      issuedAt: (state) => state.refreshedAt,
      renewBeforeMs: ROLE_REFRESH_BEFORE_MS,
      fetch: async (now) => ({
        roleArn: role.roleArn,
        externalId: role.externalId,
        sourceKeyId: key.accessKeyId,
        ...(await assumeRole(role, key, { timeoutMs, dispatcher, now })),
        refreshedAt: new Date(now).toISOString(),
      }),
      save: (draft, next) => draft.set(awsRoleStateId(grant.id), next),
      failed: (err) => {
        if (err instanceof ProxyError) return err;
        const message =
          err instanceof StsError
            ? err.message
            : err instanceof RenewalTooShort
              ? `STS answered AssumeRole for ${role.roleArn} with credentials that expire at ${err.expiresAt}, too soon to use`
              : `grant "${grant.id}" could not assume role ${role.roleArn}`;
        return new ProxyError('token_refresh_failed', message, {
          grant: grant.id,
          cause: err,
          hint: "keyway retries with backoff; check the role's trust policy, the stored key and sts_endpoint",
        });
      },
      storeDown: (err) =>
        new ProxyError('token_refresh_failed', `grant "${grant.id}" cannot assume its role while the store's database is unavailable`, {
          grant: grant.id,
          cause: err,
          hint: "keyway tries again on the next request once the database is back; /readyz shows the store's state",
        }),
      unsaved: 'memory',
      log: {
        renewed: 'role assumed',
        failed: 'assume role failed',
        fields: (next) => ({ role: role.roleArn, expires_at: new Date(next.expiresAt).toISOString() }),
      },
    };
  }
}

function credentialOf(state: AwsRoleState): AwsKey {
  return { kind: 'aws', accessKeyId: state.accessKeyId, secretAccessKey: state.secretAccessKey, sessionToken: state.sessionToken };
}
