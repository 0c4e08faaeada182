import { tailAudit } from '../audit/index.ts';
import { type Config, parseDomainPattern, resolveFromHome } from '../config/index.ts';

// A grant for host:PORT when the agent's requests go to another port of that host (a typo:
// api.local.test:19444 for an API on 19443) matches none of them: they are tunnelled blind, and the
// client sees only the real server's certificate error. grants add/set say so when the audit log's
// recent lines show it (issue 48).

/** How many of the newest audit lines are read, and how far back. */
const LINES = 2000;
const WITHIN_MS = 7 * 24 * 3600 * 1000;

export async function otherPortWarnings(config: Config, domains: readonly string[], now = Date.now()): Promise<string[]> {
  if (config.audit.sink !== 'file') return [];
  const wanted = new Map<string, number>();
  for (const text of domains) {
    const pattern = parseDomainPattern(text);
    if (typeof pattern !== 'string' && pattern.port !== undefined && !pattern.host.includes('*')) wanted.set(pattern.host.toLowerCase(), pattern.port);
  }
  if (wanted.size === 0) return [];
  const seen = new Map<string, Set<number>>();
  try {
    for await (const line of tailAudit(resolveFromHome(config, config.audit.path), { lines: LINES, follow: false })) {
      const host = line.host.toLowerCase();
      const port = wanted.get(host);
      if (port === undefined || line.port === port || line.port === 0 || now - Date.parse(line.ts) > WITHIN_MS) continue;
      if (line.decision !== 'tunnel' && line.decision !== 'deny') continue;
      if (!seen.has(host)) seen.set(host, new Set());
      seen.get(host)!.add(line.port);
    }
  } catch {
    return []; // no log yet, or not readable here: nothing to say
  }
  return [...seen].map(
    ([host, ports]) =>
      `recent requests to ${host} went to port ${[...ports].sort((a, b) => a - b).join(', ')}, not ${wanted.get(host)}: this grant will not match them (they are tunnelled blind, and a client sees the real server's certificate); is the port right?`,
  );
}
