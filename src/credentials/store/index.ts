// The encrypted store: master key loading, the Store itself, and the draft type update() callbacks get.
export { findMasterKey, loadMasterKey, MASTER_KEY_BYTES, MASTER_KEY_FILENAME } from './master-key.ts';
export type { LoadMasterKeyOptions, MasterKey, MasterKeySource } from './master-key.ts';
export { Store } from './store.ts';
export type { StoreDraft } from './draft.ts';
export type { OpenStoreOptions } from './store.ts';
export type { CredentialStore } from './credential-store.ts';
export { describeDatabase, PostgresStore } from './postgres-store.ts';
