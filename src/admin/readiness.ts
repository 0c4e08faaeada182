// What /readyz checks: the parts without which keyway should not be sent traffic.
import type { Readiness } from './operate-routes.ts';
import { retentionWarning, type AuditSink, type RetentionHold } from '../audit/index.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import type { CertificateAuthority } from '../tls/index.ts';

interface ReadinessParts {
  ca: Pick<CertificateAuthority, 'notAfter'>;
  store: Pick<CredentialStore, 'readError'>;
  /** The spend ledger: why its last flush to the store failed, while it fails (a store that cannot be written). */
  spend?: { readonly writeError?: Error | undefined };
  audit: Pick<AuditSink, 'healthy'>;
  /** Rotated audit files min_retention keeps past keep: a warning, never a failed check. */
  retention?: () => RetentionHold | null;
  minRetentionMs?: number;
  /** Why audit rotation fails, if it does: a warning (lines are still written, to one growing file). */
  rotation?: () => Error | null;
  /** audit.export targets failing for a while (audit-export/status-view.ts): a warning, never a failed check. */
  exportWarning?: (now: Date) => string | null;
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
  const hold = parts.retention?.() ?? null;
  const rotation = parts.rotation?.() ?? null;
  const exporting = parts.exportWarning?.(now) ?? null;
  const warnings = {
    ...(exporting === null ? {} : { audit_export: exporting }),
    ...(hold === null ? {} : { audit_retention: retentionWarning(hold, parts.minRetentionMs ?? 0) }),
    ...(rotation === null ? {} : { audit_rotation: rotationWarning(rotation) }),
  };
  return {
    ...(Object.keys(warnings).length === 0 ? {} : { warnings }),
    ca: parts.ca.notAfter.getTime() > now.getTime() ? null : 'the CA certificate has expired; run `keyway ca` for its dates',
    store: storeError !== undefined ? storeProblem(codeOf(storeError)) : writeProblem(parts.spend?.writeError),
    audit: parts.audit.healthy
      ? null
      : 'the audit log cannot be written (unwritable, too little room left, or its database unreachable); injected requests are refused',
  };
}

/** In keyway's words: the error's code (ENOSPC, EISDIR, ...), never its message (a path). */
export function rotationWarning(err: Error): string {
  return `audit rotation fails (${codeOf(err)}): lines are still written and chained, to one file that grows past audit.max_bytes`;
}

function storeProblem(code: string): string {
  const what = code === 'store_unavailable' ? "the store's database cannot be used" : 'the store file cannot be read';
  return `${what} (${code}); the proxy serves from its last good copy`;
}

/** A store keyway reads but cannot write: model spend counts wait (in memory and the spend journal) and budgets elsewhere do not see them. */
function writeProblem(err: Error | undefined): string | null {
  if (err === undefined) return null;
  return `the store cannot be written (${codeOf(err)}): model spend waits in memory and in the spend journal, and other processes' budgets do not see it`;
}

function codeOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'error';
}
