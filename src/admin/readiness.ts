// What /readyz checks: the parts without which keyway should not be sent traffic.
import type { Readiness } from './operate-routes.ts';
import type { AuditSink } from '../audit/index.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import type { CertificateAuthority } from '../tls/index.ts';

interface ReadinessParts {
  ca: Pick<CertificateAuthority, 'notAfter'>;
  store: Pick<CredentialStore, 'readError'>;
  audit: Pick<AuditSink, 'healthy'>;
  now?: () => Date;
}

/**
 * Each part's problem in words keyway writes itself (an error code, never a path or a message
 * from the file system), or null. The CA is loaded before anything listens, so what can still go
 * wrong with it in a long-running process is its expiry.
 */
export function readinessOf(parts: ReadinessParts): Readiness {
  const now = (parts.now ?? (() => new Date()))();
  const storeError = parts.store.readError;
  return {
    ca: parts.ca.notAfter.getTime() > now.getTime() ? null : 'the CA certificate has expired; run `keyway ca` for its dates',
    store: storeError === undefined ? null : storeProblem(codeOf(storeError)),
    audit: parts.audit.healthy
      ? null
      : 'the audit log cannot be written (unwritable, too little room left, or its database unreachable); injected requests are refused',
  };
}

function storeProblem(code: string): string {
  const what = code === 'store_unavailable' ? "the store's database cannot be used" : 'the store file cannot be read';
  return `${what} (${code}); the proxy serves from its last good copy`;
}

function codeOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'error';
}
