// Signed checkpoints of the audit chain: evidence that anyone with the public key can check.
export { checkpointKeyFrom, checkpointKeyFromSeed, checkpointSeedFrom, publicKeyPem, readPublicKey, type CheckpointKey } from './key.ts';
export { appendToFile, CHECKPOINT_INTERVAL_MS, CheckpointSigner, checkpointsPathFor } from './signer.ts';
export { verifyPublic, type PublicVerifyResult, type SourcedLine } from './verify-public.ts';
export { exportBundle, fileChain, parseBundle, verifyBundle, BUNDLE_FORMAT, type AuditBundle, type ChainSource } from './bundle.ts';
