// A grant's status as a person reads it, for the Grants page and the overview alike: both take the
// API's display_status (worked out once, on the server, by credentials/grant-display.ts), so the
// count on the overview and the badge on each card cannot disagree.

/** The statuses in the order the overview lists them. */
export const STATUS_ORDER = ['active', 'expiring', 'needs reconnect', 'waiting for login', 'no secret', 'revoked'];

/** `needs_reconnect` → `needs reconnect`; the words the API uses otherwise. */
export function statusLabel(displayStatus) {
  return String(displayStatus ?? 'unknown').replaceAll('_', ' ');
}

/** The badge's colour class; the word is always shown beside it. */
export function statusClass(label) {
  if (label === 'active') return 'ok';
  if (label === 'expiring') return 'warn';
  return 'bad';
}
