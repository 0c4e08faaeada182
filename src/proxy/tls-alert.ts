import type { Duplex } from 'node:stream';
import type { ProxyError } from '../errors/index.ts';
import type { AuditDraft } from './audit-event.ts';
import type { Records } from './contract.ts';

// The refusal for a client that has sent its TLS ClientHello and waits for the server's answer,
// where keyway will not be that server (a redirected connection tunnelled blind, whose host could
// not be reached; a redirected connection refused before anything was decided). Such a client
// reads the next bytes as a TLS record: keyway's plain HTTP 502 there reached curl as "wrong version
// number" (issue 86). A TLS alert is the one answer it can read: curl says "tlsv1 alert internal
// error", Node `ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR`, Go "remote error: tls: internal error". The
// audit line (and, under keyway run --contain, a line on the run's stderr) says why.

/** RFC 8446 6: the alerts keyway sends. */
export const TLS_ALERT = {
  /** A refused destination: access control said no (403, 407). */
  accessDenied: 49,
  /** Anything else keyway could not do for the client: the host unreachable, a fault of its own. */
  internalError: 80,
} as const;

/**
 * One fatal alert record. Record version 0x0303, as TLS 1.3 writes every record (RFC 8446 5.1) and
 * every TLS 1.2 client takes before a ServerHello.
 */
export function alertRecord(description: number): Buffer {
  return Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]);
}

/** The alert for a refusal: a refused destination is access_denied, every other failure internal_error. */
export function alertFor(error: ProxyError): number {
  return error.status === 403 || error.status === 407 ? TLS_ALERT.accessDenied : TLS_ALERT.internalError;
}

/** The audit line, then the alert, then the connection closed. */
export function refuseWithAlert(records: Records, draft: AuditDraft, error: ProxyError, socket: Duplex): void {
  draft.failed(error);
  draft.commit(records);
  if (socket.destroyed || socket.writableEnded) return;
  socket.end(alertRecord(alertFor(error)));
  // As for a refused CONNECT (respond.ts): unread bytes at close make the kernel send a reset,
  // which can reach the client before the alert. Read and drop what still comes, for a moment.
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

const LINGER_MS = 2_000;
