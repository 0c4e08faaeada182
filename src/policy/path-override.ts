import { noneOf } from './method-override.ts';
import { normaliseRequestTarget } from './request-path.ts';

// Path-override headers: IIS's URL Rewrite module, Symfony (when trusted) and some gateways route a
// request by `X-Original-URL` or `X-Rewrite-URL` instead of its request line, so `GET /` with
// `X-Original-URL: /admin` would reach what a deny on `/admin/**` refuses. As with method overrides
// (method-override.ts), the request is judged as every path it names, each normalised like the
// request's own; one that cannot be normalised is refused.

export const PATH_OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url'] as const;

export interface NamedPath {
  /** Normalised, without the query. */
  path: string;
  /** The header that named it, e.g. `X-Original-URL`. */
  by: string;
}

/** No path named (most requests): one shared, frozen answer, nothing allocated per request. */
const NONE_NAMED: readonly NamedPath[] = Object.freeze([]);

export function overridePaths(headers: Readonly<Record<string, string | string[] | undefined>>): readonly NamedPath[] | string {
  if (noneOf(headers, PATH_OVERRIDE_HEADERS)) return NONE_NAMED;
  const named: NamedPath[] = [];
  for (const name of PATH_OVERRIDE_HEADERS) {
    const value = headers[name];
    const by = name === 'x-original-url' ? 'X-Original-URL' : 'X-Rewrite-URL';
    for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) {
      const target = normaliseRequestTarget(v.trim());
      if (!target.ok) return `${by} names a path that cannot be normalised safely: ${target.reason}`;
      if (!named.some((n) => n.path === target.path)) named.push({ path: target.path, by });
    }
  }
  return named;
}
