// The TLS module's public surface. node-forge stays behind it: nothing outside src/tls imports forge.
export { importCa, loadExistingCa, loadOrCreateCa } from './ca.ts';
export type { CertificateAuthority, ImportedCa } from './ca.ts';
export type { BundleWriter } from './bundle.ts';
export { LeafMinter } from './leaf.ts';
export type { LeafCertificate } from './leaf.ts';
export { SecureContextCache } from './contexts.ts';
export type { SecureContextCacheOptions } from './contexts.ts';
export { normaliseHost } from './host.ts';
export { writeBundleInChild } from './bundle-in-child.ts';
