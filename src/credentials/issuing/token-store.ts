import type { CredentialStore } from '../store/credential-store.ts';
import type { TokenFailureKind } from './token-endpoint.ts';

// What every renewal (renewer.ts: OAuth refreshes, minted tokens, AWS role credentials) needs of
// the store and tells the metrics: apart from any one kind, so the Renewer and its kinds share them
// without importing each other.

/** What a renewal needs of the store: reads from memory, read-modify-write under its lock, and (the proxy's stores) a catch-up before a token is handed out. */
export type TokenStore = Pick<CredentialStore, 'get' | 'update' | 'acquireRefreshLock'> & Partial<Pick<CredentialStore, 'catchUp'>>;

/** How a token endpoint call ended: ok, a failure the endpoint module names, or anything else. */
export type TokenRequestResult = 'ok' | TokenFailureKind | 'error';

export interface TokenObserver {
  tokenRequest(grantId: string, seconds: number, result: TokenRequestResult): void;
  /** A refreshed token was saved and is handed out. */
  tokenRefreshed(grantId: string): void;
}
