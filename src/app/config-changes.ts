// What a reload reports: the key paths that changed (names only, never values) and which of them
// a restart applies, so `keyway reload` and its audit line can say so.
import type { Config } from '../config/index.ts';

/**
 * Keys whose value the running process took once, at start (listeners, the audit writer, the
 * upstream and token-endpoint clients, the token manager's clock settings): a reload records the
 * change and says a restart applies it. Every other key applies to the next request or connection.
 */
export const RESTART_KEYS = [
  'proxy.listen',
  'proxy.workers',
  'proxy.upstream_ca',
  'proxy.timeouts.upstream',
  'proxy.upstream_timeout',
  'admin',
  'audit',
  'oauth',
  'egress',
  'telemetry',
  // Slack approvals: the room, its mode and its Socket Mode connection start with the process
  // (the channel, approvers and secrets are read live, but adding or removing the section is not).
  'approvals.slack',
] as const;

/** Whether a changed key takes effect only after a restart (the key or a section above it is in RESTART_KEYS). */
export function needsRestart(key: string): boolean {
  return RESTART_KEYS.some((prefix) => key === prefix || key.startsWith(`${prefix}.`));
}

// Where a change is named one level down (`grants.github`, `proxy.hosts`, `proxy.timeouts.idle`)
// rather than as the whole section.
const EXPANDED = new Set(['proxy', 'proxy.timeouts', 'admin', 'audit', 'oauth', 'providers', 'grants', 'agents', 'approvals']);

/** The key paths whose value differs between two configs (names only: values may be sensitive). */
export function changedKeys(before: Config, after: Config): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string[]) => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const key = path.join('.');
    if (!EXPANDED.has(key) || !isPlainObject(a) || !isPlainObject(b)) {
      out.push(key);
      return;
    }
    for (const child of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[child], b[child], [...path, child]);
  };
  const sections = (config: Config) => ({ ...config, home: undefined, file: undefined }) as Record<string, unknown>;
  const [a, b] = [sections(before), sections(after)];
  for (const section of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[section], b[section], [section]);
  return out.sort();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
