// Method-override headers: many frameworks (Express's method-override, Laravel, Symfony, ASP.NET,
// Google and Azure APIs) run a POST as the method named in one of these, so a `methods: [GET, POST]`
// rule would let a DELETE through. keyway neither strips them (that would silently turn an intended
// PATCH into a POST that creates) nor trusts the real method alone: the request is judged as every
// method it names, and sent on unchanged only if all of them are allowed.
//
// Covered: the three headers below (any case, repeated or comma-separated) and a `_method` query
// parameter (Laravel, Symfony and others read it from the query). Not covered: `_method` inside a
// form-encoded POST body (Rails, Laravel): a rule that allows POST on such an app allows what a form
// can override to. Say so where POST is allowed.

export const OVERRIDE_HEADERS = ['x-http-method-override', 'x-method-override', 'x-http-method'] as const;
export const OVERRIDE_QUERY_PARAM = '_method';

const METHOD = /^[A-Za-z][A-Za-z0-9_-]*$/;

export interface NamedMethod {
  method: string;
  /** Where it was named: `X-HTTP-Method-Override`, `?_method`. */
  by: string;
}

/** No method named (most requests): one shared, frozen answer, nothing allocated per request. */
const NONE_NAMED: readonly NamedMethod[] = Object.freeze([]);

/**
 * The methods a request names besides its own, upper-cased and without duplicates; a string
 * (the reason) when one is not a method token, so a garbled override is refused rather than guessed.
 */
export function overrideMethods(headers: Readonly<Record<string, string | string[] | undefined>>, query: string): readonly NamedMethod[] | string {
  // None of the headers, and a query that cannot name `_method` however it is encoded (no `_`, and
  // no `%` that could decode to one): nothing to read.
  if (noneOf(headers, OVERRIDE_HEADERS) && (query.length <= 1 || (query.indexOf('_') === -1 && query.indexOf('%') === -1))) return NONE_NAMED;
  const named: NamedMethod[] = [];
  const add = (value: string, by: string): string | undefined => {
    for (const token of value.split(',')) {
      const method = token.trim();
      if (!METHOD.test(method)) return `${by} does not name an HTTP method`;
      if (!named.some((n) => n.method === method.toUpperCase())) named.push({ method: method.toUpperCase(), by });
    }
    return undefined;
  };
  for (const name of OVERRIDE_HEADERS) {
    const value = headers[name];
    for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) {
      const error = add(v, headerLabel(name));
      if (error) return error;
    }
  }
  if (query.length > 1) {
    for (const value of new URLSearchParams(query.slice(1)).getAll(OVERRIDE_QUERY_PARAM)) {
      const error = add(value, `?${OVERRIDE_QUERY_PARAM}`);
      if (error) return error;
    }
  }
  return named;
}

/** None of `names` is among `headers` (a loop over the list itself: a header added to it is looked for here too). */
export function noneOf(headers: Readonly<Record<string, string | string[] | undefined>>, names: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) if (headers[names[i]!] !== undefined) return false;
  return true;
}

function headerLabel(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => `${dash}${c.toUpperCase()}`).replace('Http', 'HTTP');
}
