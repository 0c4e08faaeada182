import { findPlaceholders, mayHoldPlaceholder, wholePlaceholder } from './placeholder.ts';

// Where a placeholder may be resolved: only at a position its grant declares (capture.resolve, or
// the standard OAuth ones: capture/core/settings.ts). A placeholder the agent writes anywhere
// else (a gist's content, a chat message, a file path, a custom header, a JSON member the upstream
// keeps) would have the real token stored upstream, where the agent could read it back: refused,
// never resolved.
//
// These functions find the placeholders in a piece of a request and say which sit in a position
// by name (the Authorization header's credential or a Basic pair's user or password; a header,
// query parameter, form field or top-level JSON member whose whole value is one placeholder); the
// request stages then check each against its record (which field, which host and path).

/** One placeholder in a credential position: its key, and where it is (header, query or body) and under which name. */
export interface Placed {
  readonly key: string;
  readonly in: 'header' | 'query' | 'body';
  readonly field: string;
}

/** What a piece of the request holds: nothing, placeholders only where credentials go (and how to put the real values there), or one elsewhere. */
export type Placement =
  | { readonly kind: 'none' }
  | { readonly kind: 'misplaced'; readonly where: string }
  | { readonly kind: 'placed'; readonly placed: readonly Placed[]; rewrite(real: (key: string) => string): string };

const NONE: Placement = { kind: 'none' };

/** An Authorization header: `Scheme CREDENTIAL` with the credential one placeholder, or Basic with the user or password one. */
export function authorizationPlacement(value: string): Placement {
  const basic = /^(basic)(\s+)([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (basic === null && !mayHoldPlaceholder(value)) return NONE;
  if (basic !== null) {
    const pair = Buffer.from(basic[3]!, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    const user = colon === -1 ? pair : pair.slice(0, colon);
    const password = colon === -1 ? '' : pair.slice(colon + 1);
    const inUser = user === '' ? undefined : wholePlaceholder(user);
    const inPassword = password === '' ? undefined : wholePlaceholder(password);
    const found = findPlaceholders(pair).length;
    if (found === 0) return NONE;
    if (found !== (inUser ? 1 : 0) + (inPassword ? 1 : 0)) return { kind: 'misplaced', where: 'the Authorization header' };
    const placed: Placed[] = [
      ...(inUser ? [{ key: inUser, in: 'header' as const, field: 'authorization' }] : []),
      ...(inPassword ? [{ key: inPassword, in: 'header' as const, field: 'authorization' }] : []),
    ];
    return {
      kind: 'placed',
      placed,
      rewrite: (real) => {
        const u = inUser ? real(inUser) : user;
        const p = inPassword ? real(inPassword) : password;
        return `${basic[1]}${basic[2]}${Buffer.from(colon === -1 && !inPassword ? u : `${u}:${p}`, 'utf8').toString('base64')}`;
      },
    };
  }
  const scheme = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(\s+)(\S+)\s*$/.exec(value);
  const key = scheme === null ? undefined : wholePlaceholder(scheme[3]!);
  if (scheme === null || key === undefined || findPlaceholders(value).length !== 1) return { kind: 'misplaced', where: 'the Authorization header' };
  return { kind: 'placed', placed: [{ key, in: 'header', field: 'authorization' }], rewrite: (real) => `${scheme[1]}${scheme[2]}${real(key)}` };
}

/**
 * A form body or a query string (`a=1&b=2`): each pair whose name is a credential field and whose
 * whole value is one placeholder; any other pair holding one is misplaced. The other pairs are kept
 * byte for byte.
 */
export function formPlacement(raw: string, where: string, fields: ReadonlySet<string>, position: 'query' | 'body'): Placement {
  if (!mayHoldPlaceholder(decodeLoosely(raw))) return NONE;
  const pairs = raw.split('&');
  const placed: Array<Placed & { index: number; rawName: string }> = [];
  for (const [index, pair] of pairs.entries()) {
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const name = decodeForm(rawName);
    const value = eq === -1 ? '' : decodeForm(pair.slice(eq + 1));
    if (name === undefined || value === undefined) return { kind: 'misplaced', where: `${where} (a field keyway cannot decode)` };
    if (!mayHoldPlaceholder(name) && !mayHoldPlaceholder(value)) continue;
    const key = wholePlaceholder(value);
    if (mayHoldPlaceholder(name) || key === undefined || !fields.has(name)) return { kind: 'misplaced', where: `${where} field ${fieldName(name)}` };
    placed.push({ key, in: position, field: name, index, rawName });
  }
  if (placed.length === 0) return NONE;
  return {
    kind: 'placed',
    placed,
    rewrite: (real) => {
      const out = [...pairs];
      for (const p of placed) out[p.index] = `${p.rawName}=${encodeURIComponent(real(p.key))}`;
      return out.join('&');
    },
  };
}

/**
 * A JSON body: top-level members named as credential fields whose whole value is one placeholder.
 * Every placeholder in the text must be one of those, written as it (not \u-escaped), once each:
 * the rewrite then replaces them in the text, leaving every other byte (numbers included) as it was.
 */
export function jsonPlacement(text: string, fields: ReadonlySet<string>): Placement {
  if (!mayHoldPlaceholder(text) && !text.includes('\\u')) return NONE;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NONE; // the server refuses it too: nothing is resolved in it
  }
  const placed: Placed[] = [];
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [name, member] of Object.entries(value)) {
      const key = typeof member === 'string' ? wholePlaceholder(member) : undefined;
      if (key !== undefined && fields.has(name)) placed.push({ key, in: 'body', field: name });
    }
  }
  const inText = findPlaceholders(text);
  const inValues = placed.map((p) => p.key);
  // As the server reads it: a placeholder hidden behind \u escapes counts too. A document too deep
  // to write out again (past the stack) cannot be checked: refused, as one that may hide one.
  let parsed: string[];
  try {
    parsed = findPlaceholders(JSON.stringify(value));
  } catch {
    return { kind: 'misplaced', where: 'the JSON body (nested too deep to read)' };
  }
  if (inText.length === 0 && parsed.length === 0) return NONE;
  // Each placeholder in the text is one in a credential member, written as itself, once.
  if (inText.length !== inValues.length || [...inText].sort().join() !== [...inValues].sort().join() || parsed.length !== inValues.length)
    return { kind: 'misplaced', where: 'the JSON body, outside a credential member' };
  return {
    kind: 'placed',
    placed,
    rewrite: (real) => {
      let out = text;
      for (const p of placed) {
        // The key with its prefix as written, inside its string: replaced by the real value, JSON-escaped.
        const escaped = JSON.stringify(real(p.key)).slice(1, -1);
        const at = out.indexOf(p.key);
        const prefixStart = out.lastIndexOf('"', at) + 1;
        out = `${out.slice(0, prefixStart)}${escaped}${out.slice(at + p.key.length)}`;
      }
      return out;
    },
  };
}

/** A path (without its query) may hold none. */
export function pathPlacement(path: string): Placement {
  return mayHoldPlaceholder(decodeLoosely(path)) ? { kind: 'misplaced', where: 'the path' } : NONE;
}

/** Any other header: a position (`names`) when its whole value is one placeholder; else it may hold none. */
export function headerPlacement(name: string, value: string, names: ReadonlySet<string>): Placement {
  if (!mayHoldPlaceholder(decodeLoosely(value))) return NONE;
  const key = names.has(name) ? wholePlaceholder(value.trim()) : undefined;
  if (key === undefined || findPlaceholders(value).length !== 1) return { kind: 'misplaced', where: `the header ${fieldName(name)}` };
  return { kind: 'placed', placed: [{ key, in: 'header', field: name }], rewrite: (real) => real(key) };
}

function decodeForm(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Percent-escapes undone where they decode, so a placeholder written %6Bwcap_… is seen too. */
function decodeLoosely(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** A field or header name for a message: short, printable, never a value. */
function fieldName(name: string): string {
  return JSON.stringify(name.length <= 40 ? name : `${name.slice(0, 40)}…`);
}
