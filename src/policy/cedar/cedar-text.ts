// Cedar's literals written from keyway's values: strings (entity ids, patterns) escaped so that no
// name can close its quotes or smuggle a line into the policy text.

/** A Cedar string literal: `\\`, `\"`, the usual control escapes, and `\u{…}` outside printable ASCII. */
export function cedarString(value: string): string {
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '\\') out += '\\\\';
    else if (char === '"') out += '\\"';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code >= 0x20 && code <= 0x7e) out += char;
    else out += `\\u{${code.toString(16)}}`;
  }
  return `${out}"`;
}

/** `Type::"id"`, the id escaped. */
export function entity(type: 'Agent' | 'Grant' | 'Action', id: string): string {
  return `${type}::${cedarString(id)}`;
}

/**
 * A `like` pattern from a keyway glob (policy/glob.ts): `**` and `*` both become Cedar's `*`, which
 * also crosses `/`, so the pattern is the glob's wider reading (rules.ts keeps the exact one).
 * Globs hold no literal `*`, so every star is a wildcard; quotes and backslashes are escaped.
 */
export function likePattern(glob: string): string {
  return cedarString(glob.replace(/\*\*/g, '*'));
}
