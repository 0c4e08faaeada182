import {
  parseItem,
  serializeDictionary,
  parseDictionary,
  parseList,
  serializeList,
  serializeItem,
  serializeInnerList,
  type Item,
  type InnerList,
} from 'structured-headers';

// RFC 9421 section 2: the components a signature covers, and each one's value as the signature
// base writes it. Derived components (@method, @authority, …) come from the request line and its
// target; fields from the headers, as they go upstream (lower-case names).

/** The request as it goes upstream: what the components are read from. */
export interface SignedRequest {
  readonly method: string;
  readonly scheme: 'https' | 'http';
  /** host[:port], the port only when it is not the scheme's default. */
  readonly authority: string;
  /** The path and query, as sent (`/a/b?x=1`). */
  readonly target: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** A covered component: its name and its parameters (`key` picks one member of a dictionary field; `sf` re-serialises a structured field). */
export interface Component {
  readonly name: string;
  readonly params: ReadonlyMap<string, string | boolean>;
}

const DERIVED = new Set(['@method', '@authority', '@scheme', '@target-uri', '@request-target', '@path', '@query']);

/**
 * A component as a config names it: `@method`, `content-digest`, or with parameters as the
 * signature base writes them, `"signature-agent";key="sig1"`. Throws on anything else.
 */
export function parseComponent(text: string): Component {
  const quoted = text.startsWith('"') ? text : `"${text.split(';')[0]}"${text.includes(';') ? text.slice(text.indexOf(';')) : ''}`;
  let item: Item;
  try {
    item = parseItem(quoted);
  } catch {
    throw new Error(`"${text}" is not a component (expected @method, a header name, or "name";key="member")`);
  }
  const [name, params] = item;
  if (typeof name !== 'string' || name === '' || name !== name.toLowerCase()) throw new Error(`"${text}": a component name is lower case`);
  if (name.startsWith('@') && !DERIVED.has(name)) throw new Error(`"${text}": keyway derives ${[...DERIVED].join(', ')}`);
  const out = new Map<string, string | boolean>();
  for (const [key, value] of params) {
    if (key !== 'key' && key !== 'sf') throw new Error(`"${text}": the parameter ${key} is not one keyway signs with (key, sf)`);
    if (key === 'key' && typeof value !== 'string') throw new Error(`"${text}": key names a dictionary member, in quotes`);
    out.set(key, key === 'key' ? (value as string) : true);
  }
  if (name.startsWith('@') && out.size > 0) throw new Error(`"${text}": a derived component takes no parameters`);
  return { name, params: out };
}

/** The component's identifier as the signature base and Signature-Input write it. */
export function componentItem(component: Component): Item {
  return [component.name, new Map([...component.params].map(([k, v]) => [k, v]))];
}

/** The component's value in the signature base; throws naming a field the request lacks. */
export function componentValue(request: SignedRequest, component: Component): string {
  const q = request.target.indexOf('?');
  const path = q === -1 ? request.target : request.target.slice(0, q);
  switch (component.name) {
    case '@method':
      return request.method; // as sent: a method is case-sensitive (RFC 9421 2.2.1)
    case '@authority':
      return authorityOf(request);
    case '@scheme':
      return request.scheme;
    case '@target-uri':
      return `${request.scheme}://${authorityOf(request)}${request.target}`;
    case '@request-target':
      return request.target;
    case '@path':
      return path === '' ? '/' : path;
    case '@query':
      return q === -1 ? '?' : request.target.slice(q);
  }
  const raw = request.headers[component.name];
  if (raw === undefined) throw new Error(`the request has no ${component.name} header to sign`);
  // RFC 9421 2.1: each value trimmed, several joined with ", ".
  const value = (typeof raw === 'string' ? [raw] : raw).map((v) => v.trim()).join(', ');
  const key = component.params.get('key');
  if (typeof key === 'string') {
    const member = parseDictionary(value).get(key);
    if (member === undefined) throw new Error(`the ${component.name} header has no member ${key}`);
    // The member's value as a structured field writes it (RFC 9421 2.1.2): a boolean true is ?1.
    return Array.isArray(member[0]) ? serializeInnerList(member as InnerList) : serializeItem(member as Item);
  }
  if (component.params.get('sf') === true) return reserialized(component.name, value);
  return value;
}

/** The authority, lower case, without the scheme's default port (RFC 9421 2.2.3). */
function authorityOf(request: SignedRequest): string {
  const authority = request.authority.toLowerCase();
  const port = request.scheme === 'https' ? ':443' : ':80';
  return authority.endsWith(port) ? authority.slice(0, -port.length) : authority;
}

/**
 * A structured field serialised anew (sf): read as a dictionary, else a list, else an item, in
 * that order (a field that parses as one does not parse as an earlier one with the same meaning).
 */
function reserialized(name: string, value: string): string {
  try {
    return serializeDictionary(parseDictionary(value));
  } catch {}
  try {
    return serializeList(parseList(value));
  } catch {}
  try {
    return serializeItem(parseItem(value));
  } catch {
    throw new Error(`the ${name} header is not a structured field`);
  }
}

export type { InnerList };
