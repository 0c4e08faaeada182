import { ProxyError } from '../../errors/index.ts';
import type { GrantRef, OAuthGrantRef } from '../grant-ref.ts';
import { reasonOf } from './pending-saves.ts';

// The errors a token refresh ends in, as the agent sees them (the README's error table). Messages name the
// grant and a reason code, never a token or a foreign message.

export function needsReconnect(grant: Pick<OAuthGrantRef, 'id' | 'provider'>, message: string): ProxyError {
  return new ProxyError('grant_needs_reconnect', message, {
    grant: grant.id,
    hint: `keyway connect ${grant.provider ?? grant.id} --grant ${grant.id}`,
  });
}

/**
 * The provider answered but the store could not take the new tokens. 502 token_refresh_failed, like
 * any refresh that did not complete: the grant is sound, the request can be retried, and nothing
 * here is about the audit log (503 audit_unavailable means that, and nothing else).
 */
export function pendingSaveError(grant: Pick<GrantRef, 'id'>, lastError: unknown): ProxyError {
  return new ProxyError(
    'token_refresh_failed',
    `grant "${grant.id}" was refreshed but its new token could not be saved (${reasonOf(lastError)}); keyway keeps it and retries the save before using it`,
    { grant: grant.id, cause: lastError, hint: "check that keyway's data/ folder is writable and has free space; retry the request shortly" },
  );
}

export function supersededError(grant: Pick<GrantRef, 'id'>): ProxyError {
  return new ProxyError('token_refresh_failed', `grant "${grant.id}" changed (a new secret, a revoke) while it was being refreshed`, {
    grant: grant.id,
    hint: 'retry the request',
  });
}
