import type { DomainPattern } from '../../config/index.ts';
import { parseDomainPattern } from '../../config/index.ts';
import { parseByteSize } from '../../config/byte-size.ts';
import { TOKEN_FIELDS } from '../../credentials/types/login_capture/fields/token-fields.ts';
import { patternMatches } from '../../policy/domains.ts';

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
  /** Response headers whose value is captured at a watched endpoint (lower case): X-Subject-Token, Authorization. */
  readonly headers: readonly string[];
  /** What the grant declares is no credential at a watched endpoint: body members (paths or names), headers, cookies. */
  readonly pass: { readonly fields: ReadonlySet<string>; readonly headers: ReadonlySet<string>; readonly cookies: ReadonlySet<string> };
  /** Where a placeholder resolves on a request (positions.ts): the grant's capture.resolve, or the standard OAuth positions. */
  readonly resolve: readonly ResolvePosition[];
  readonly maxBody: number;
  /** The agent's connections to hosts no grant covers are intercepted, for placeholders sent there. */
  readonly guardOtherHosts: boolean;
  /** The names of resolve's positions, by where they are: what the request stages look for placeholders in. */
  readonly positionNames: { readonly header: ReadonlySet<string>; readonly query: ReadonlySet<string>; readonly body: ReadonlySet<string> };
  /** The grant's `agent`/`agents`: only they log in through it; undefined: any agent given the grant. */
  readonly owners: ReadonlySet<string> | undefined;
}

/** Whether an agent may log in and use placeholders through the grant (its agent/agents, if named). */
export function ownedBy(settings: CaptureSettings, agent: string): boolean {
  return settings.owners === undefined || settings.owners.has(agent);
}

/**
 * One place a placeholder resolves: a header, a query parameter or a body member (a top-level JSON
 * member or a form field) named `name`, on requests to `host` (default: the grant's domains) at
 * `path` (exact, or a prefix ending in `*`; default: any), for the captured fields in `fields`
 * (default: every captured field but the refresh and ID tokens).
 */
export interface ResolvePosition {
  /** undefined: the grant's domains; 'login': its endpoints' hosts. */
  readonly host: DomainPattern | 'login' | undefined;
  readonly path: string | undefined;
  readonly in: 'header' | 'query' | 'body';
  /** Lower case for a header. */
  readonly name: string;
  readonly fields: ReadonlySet<string> | undefined;
}

export interface ResolveConfig {
  host?: string | undefined;
  path?: string | undefined;
  in: 'header' | 'query' | 'body';
  name: string;
  fields?: readonly string[] | undefined;
}

export interface CaptureConfig {
  endpoints: ReadonlyArray<{ host: string; path: string }>;
  fields?: readonly string[] | undefined;
  headers?: readonly string[] | undefined;
  pass?: { fields?: readonly string[] | undefined; headers?: readonly string[] | undefined; cookies?: readonly string[] | undefined } | undefined;
  resolve?: readonly ResolveConfig[] | undefined;
  max_body?: string | undefined;
  guard_other_hosts?: boolean | undefined;
}

export function compileCapture(config: CaptureConfig, owners?: readonly string[]): CaptureSettings {
  const endpoints = config.endpoints.flatMap(({ host, path }) => {
    const pattern = parseDomainPattern(host);
    return typeof pattern === 'string' ? [] : [{ host: pattern, path }];
  });
  const fields = config.fields ?? [...TOKEN_FIELDS];
  const headers = (config.headers ?? []).map((h) => h.toLowerCase());
  const resolve = config.resolve === undefined ? defaultPositions(headers) : config.resolve.map(compilePosition);
  return {
    endpoints,
    fields,
    headers,
    pass: {
      fields: new Set(config.pass?.fields ?? []),
      headers: new Set((config.pass?.headers ?? []).map((h) => h.toLowerCase())),
      cookies: new Set(config.pass?.cookies ?? []),
    },
    resolve,
    tokenFields: [...new Set<string>([...TOKEN_FIELDS, ...fields])],
    maxBody: parseByteSize(config.max_body ?? '1MiB') ?? 1024 * 1024,
    guardOtherHosts: config.guard_other_hosts ?? true,
    positionNames: namesOf(resolve),
    owners: owners === undefined ? undefined : new Set(owners),
  };
}

function namesOf(positions: readonly ResolvePosition[]): CaptureSettings['positionNames'] {
  const of = (where: ResolvePosition['in']) => new Set(positions.filter((p) => p.in === where).map((p) => p.name));
  return { header: of('header'), query: of('query'), body: of('body') };
}

/** The field a placeholder's record was captured as, when no position names fields: every one but the refresh and ID tokens. */
const NOT_BY_DEFAULT: ReadonlySet<string> = new Set(['refresh_token', 'id_token']);

/**
 * Whether a captured token (its record's field) resolves at this place of a request to host:port
 * and path (without its query). The refresh token never does here: it resolves only in a refresh
 * at a watched endpoint (stage capture-body).
 */
export function resolvesAt(
  settings: CaptureSettings,
  field: string,
  place: { in: ResolvePosition['in']; name: string },
  target: { host: string; port: number; path: string },
): boolean {
  if (field === 'refresh_token') return false;
  return settings.resolve.some((p) => {
    if (p.in !== place.in || p.name !== (place.in === 'header' ? place.name.toLowerCase() : place.name)) return false;
    if (p.fields === undefined ? NOT_BY_DEFAULT.has(field) : !p.fields.has(field)) return false;
    if (p.host === 'login' && !isCaptureHost(settings, target.host, target.port)) return false;
    if (p.host !== undefined && p.host !== 'login' && !patternMatches(p.host, target.host, target.port)) return false;
    if (p.path !== undefined && !(p.path.endsWith('*') ? target.path.startsWith(p.path.slice(0, -1)) : target.path === p.path)) return false;
    return true;
  });
}

function compilePosition(config: ResolveConfig): ResolvePosition {
  const host = config.host === undefined ? undefined : parseDomainPattern(config.host);
  return {
    host: typeof host === 'string' ? undefined : host,
    path: config.path,
    in: config.in,
    name: config.in === 'header' ? config.name.toLowerCase() : config.name,
    fields: config.fields === undefined ? undefined : new Set(config.fields),
  };
}

/**
 * The standard OAuth positions: an access token (any captured field but the refresh and ID
 * tokens) in Authorization on the grant's domains, and in a header the grant captures it from
 * (X-Subject-Token is sent back as X-Auth-Token by Keystone's clients: that one is the grant's to
 * declare). The refresh token resolves only in a refresh request's body at a watched endpoint,
 * whatever the positions say (stage capture-body), and the ID token only as id_token_hint on the
 * login hosts (an end-session request).
 */
function defaultPositions(headers: readonly string[]): ResolvePosition[] {
  const position = (p: Omit<ResolvePosition, 'host' | 'path' | 'fields'> & Partial<ResolvePosition>): ResolvePosition => ({
    host: undefined,
    path: undefined,
    fields: undefined,
    ...p,
  });
  return [
    position({ in: 'header', name: 'authorization' }),
    ...headers.filter((h) => h !== 'authorization').map((name) => position({ in: 'header', name })),
    position({ in: 'query', name: 'id_token_hint', host: 'login', fields: new Set(['id_token']) }),
    position({ in: 'body', name: 'id_token_hint', host: 'login', fields: new Set(['id_token']) }),
  ];
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
