// Storing the grant `keyway connect AGENT` made: through the same operation as `keyway grants add`
// (its checks, its listing), refusing a grant that exists unless the caller asked to replace it. A
// stored secret or a captured login is never overwritten by a second connect that did not say so.

import { GRANT_ID } from '../../config/index.ts';
import { CAPTURED_PREFIX } from '../../capture/core/placeholder.ts';
import { capturedLogins, type CapturedToken } from '../../capture/core/captured.ts';
import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { KeywayError } from '../../errors/index.ts';
import { addGrant, type GrantResult, type GrantServices } from '../../operations/grants.ts';

export interface ConnectGrantOptions {
  /** Replace a stored grant of the same id (its secret, tokens and captured logins go). */
  replace: boolean;
}

/** Refuses an id that is no grant id, or one the config defines (connect writes the store only). */
export function checkGrantId(services: GrantServices, grantId: string): void {
  if (!GRANT_ID.test(grantId)) throw new KeywayError('usage', `--grant "${grantId.slice(0, 64)}": expected a-z, 0-9 and -, up to 63 characters`);
  if (services.config.grants[grantId])
    throw new KeywayError('conflict', `grant "${grantId}" is defined in the config; choose another --grant, or change it there`);
}

/** Whether the store holds a grant of this id now (re-read: another process may have written it). */
export async function grantExists(services: GrantServices, grantId: string): Promise<boolean> {
  await services.store.catchUp();
  return services.store.get(grantRecordId(grantId)) !== undefined;
}

/**
 * Whether the store's grant `grantId` is the login grant `keyway connect AGENT` made for this agent
 * and holds no login (a login cut short, or --watch's never run): connecting again fills it without
 * --replace, since there is nothing of it to lose.
 */
export async function waitingForLogin(services: GrantServices, grantId: string, agentName: string): Promise<boolean> {
  await services.store.catchUp();
  const grant = services.store.get<StoredGrant>(grantRecordId(grantId));
  if (grant?.type !== 'login_capture' || grant.status === 'revoked' || grant.labels?.['coding-agent'] !== agentName) return false;
  return capturedLogins(services.store.entries<CapturedToken>(CAPTURED_PREFIX), grantId).length === 0;
}

/** Adds `input` (a grant as `keyway grants add` takes it) or, with `replace`, puts it in place of the one stored. */
export async function saveConnectGrant(services: GrantServices, input: Record<string, unknown>, options: ConnectGrantOptions): Promise<GrantResult> {
  const id = String(input['id']);
  checkGrantId(services, id);
  if (!options.replace && (await grantExists(services, id))) {
    throw new KeywayError(
      'conflict',
      `grant "${id}" exists, and connecting again would replace what it holds: add --replace to replace it (its key or captured login is dropped), or give another --grant`,
    );
  }
  return addGrant(services, input, 'cli', { replace: options.replace });
}
