import type { DomainPattern } from '../../config/index.ts';
import { parseDomainPattern } from '../../config/index.ts';
import { parseByteSize } from '../../config/byte-size.ts';
import { TOKEN_FIELDS } from '../types/fields.ts';
import { CREDENTIAL_FIELDS } from './positions.ts';

// A login_capture grant's settings, compiled once per table build: the token endpoints it watches,
// the answer fields it swaps, and the largest answer it reads.

export interface CaptureEndpoint {
  readonly host: DomainPattern;
  /** Exact, without a query: the token endpoint's path. */
  readonly path: string;
}

export interface CaptureSettings {
  readonly endpoints: readonly CaptureEndpoint[];
  /** The answer fields swapped for placeholders (a.b: a member of a nested object). */
  readonly fields: readonly string[];
  /**
   * Every field whose presence in an answer on a capture host means a token: the standard three and
   * the grant's own. One of them in an answer keyway does not capture is refused (capture_unlisted).
   */
  readonly tokenFields: readonly string[];
  readonly maxBody: number;
  /** The agent's connections to hosts no grant covers are intercepted, for placeholders sent there. */
  readonly guardOtherHosts: boolean;
  /** Form fields, query parameters and top-level JSON members where a placeholder resolves (positions.ts). */
  readonly credentialFields: ReadonlySet<string>;
  /** The grant's `agent`/`agents`: only they log in through it; undefined: any agent given the grant. */
  readonly owners: ReadonlySet<string> | undefined;
}

/** Whether an agent may log in and use placeholders through the grant (its agent/agents, if named). */
export function ownedBy(settings: CaptureSettings, agent: string): boolean {
  return settings.owners === undefined || settings.owners.has(agent);
}

export interface CaptureConfig {
  endpoints: ReadonlyArray<{ host: string; path: string }>;
  fields?: readonly string[] | undefined;
  max_body?: string | undefined;
  guard_other_hosts?: boolean | undefined;
}

export function compileCapture(config: CaptureConfig, owners?: readonly string[]): CaptureSettings {
  const endpoints = config.endpoints.flatMap(({ host, path }) => {
    const pattern = parseDomainPattern(host);
    return typeof pattern === 'string' ? [] : [{ host: pattern, path }];
  });
  const fields = config.fields ?? [...TOKEN_FIELDS];
  return {
    endpoints,
    fields,
    tokenFields: [...new Set<string>([...TOKEN_FIELDS, ...fields])],
    maxBody: parseByteSize(config.max_body ?? '1MiB') ?? 1024 * 1024,
    guardOtherHosts: config.guard_other_hosts ?? true,
    credentialFields: new Set([...CREDENTIAL_FIELDS, ...fields.map((f) => f.split('.').pop()!)]),
    owners: owners === undefined ? undefined : new Set(owners),
  };
}

function hostMatches(pattern: DomainPattern, host: string, port: number): boolean {
  return pattern.host === host && (pattern.port === undefined || pattern.port === port);
}

/** A host one of the grant's token endpoints is on: every answer there is read for tokens. */
export function isCaptureHost(settings: CaptureSettings, host: string, port: number): boolean {
  return settings.endpoints.some((e) => hostMatches(e.host, host, port));
}

/**
 * The watched endpoint a request goes to, if it goes to one. Paths are compared as servers commonly
 * route them: any case, a trailing `/` and a `.json` suffix ignored (`/OAuth/Token/`, `/oauth/token.json`
 * reach the same handler on many), so a spelling of the endpoint is never an unwatched path.
 */
export function watchedEndpoint(settings: CaptureSettings, host: string, port: number, path: string): CaptureEndpoint | undefined {
  const wanted = routedPath(path);
  return settings.endpoints.find((e) => hostMatches(e.host, host, port) && routedPath(e.path) === wanted);
}

function routedPath(path: string): string {
  const q = path.indexOf('?');
  const bare = (q === -1 ? path : path.slice(0, q)).toLowerCase().replace(/\.json$/, '');
  return bare.length > 1 ? bare.replace(/\/+$/, '') || '/' : bare;
}

/** The endpoints' hosts as domain patterns: a capture grant covers them too (its refreshes go there). */
export function captureHosts(settings: CaptureSettings): DomainPattern[] {
  return settings.endpoints.map((e) => e.host);
}
