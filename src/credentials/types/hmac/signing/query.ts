// The raw query string, edited without re-encoding what the client sent: the signature covers the
// exact bytes that go upstream, and URLSearchParams would rewrite %20 as + and reorder nothing but
// still change bytes a server signs over.

export type QueryPair = readonly [name: string, value: string];

function nameOf(piece: string): string {
  const eq = piece.indexOf('=');
  const raw = (eq === -1 ? piece : piece.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Names of the parameters in a raw query (decoded), in order, with repeats. */
export function queryNames(query: string): string[] {
  return query === '' ? [] : query.split('&').map(nameOf);
}

/**
 * `query` with every parameter named in `set` given its new value: the first occurrence keeps its
 * place, later repeats are dropped, and names not present are appended in order. Names in `drop`
 * are removed.
 */
export function editQuery(query: string, set: readonly QueryPair[], drop: readonly string[] = []): string {
  const values = new Map(set);
  const written = new Set<string>();
  const pieces: string[] = [];
  for (const piece of query === '' ? [] : query.split('&')) {
    const name = nameOf(piece);
    if (drop.includes(name)) continue;
    const value = values.get(name);
    if (value === undefined) {
      pieces.push(piece);
      continue;
    }
    if (written.has(name)) continue;
    written.add(name);
    pieces.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  }
  for (const [name, value] of set) if (!written.has(name)) pieces.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return pieces.join('&');
}

/** The value of the last parameter, decoded, or undefined. For the test verifier. */
export function queryValue(query: string, name: string): string | undefined {
  let found: string | undefined;
  for (const piece of query === '' ? [] : query.split('&')) {
    if (nameOf(piece) !== name) continue;
    const eq = piece.indexOf('=');
    try {
      found = eq === -1 ? '' : decodeURIComponent(piece.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      found = piece.slice(eq + 1);
    }
  }
  return found;
}
