// What the audit line's format (record.ts) and its bounds (bound.ts) both do to text, apart from
// either so that neither imports the other for it: a path's query cut off, a SHA-256 in hex.

import { hash } from 'node:crypto';

/** Cut a request target at its query string or fragment, which may carry tokens or API keys. */
export function stripQuery(path: string): string;
export function stripQuery(path: string | null): string | null;
export function stripQuery(path: string | null): string | null {
  if (path === null) return null;
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}

export function sha256hex(text: string): string {
  // One-shot: no Hash object per line (this runs for every audit line and every verified one).
  return hash('sha256', text, 'hex');
}
