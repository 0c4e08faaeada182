// The string to sign, written as a template: literal text and {placeholders}. Parsed once when
// the config loads, so a typo in a placeholder is a config error, never a wrong signature later.

export const HASH_ALGORITHMS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
export type DigestEncoding = 'hex' | 'base64';

/** Placeholders that stand for one request value each. */
export const SIMPLE_PLACEHOLDERS = ['method', 'path', 'query', 'path_query', 'body', 'host', 'timestamp', 'nonce', 'key_id'] as const;
export type SimplePlaceholder = (typeof SIMPLE_PLACEHOLDERS)[number];

export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'value'; name: SimplePlaceholder }
  | { kind: 'header'; name: string }
  | { kind: 'body_hash'; algorithm: HashAlgorithm; encoding: DigestEncoding };

/** What each placeholder means, for messages and the README. */
export const PLACEHOLDER_HELP =
  '{method}, {path}, {query}, {path_query}, {body}, {body_sha256_hex} (any of sha1/sha256/sha384/sha512, hex/base64), {host}, {timestamp}, {nonce}, {key_id}, {header:NAME}; {{ and }} for literal braces';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BODY_HASH = /^body_(sha1|sha256|sha384|sha512)_(hex|base64)$/;

/** The parts of a template, or a one-line reason it is not one. */
export function parseTemplate(template: string): TemplatePart[] | string {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const char = template[i] as string;
    if ((char === '{' || char === '}') && template[i + 1] === char) {
      text += char;
      i += 2;
      continue;
    }
    if (char === '}') return `a lone } at character ${i + 1}; write }} for a literal brace`;
    if (char !== '{') {
      text += char;
      i++;
      continue;
    }
    const close = template.indexOf('}', i);
    if (close === -1) return `an unclosed { at character ${i + 1}; write {{ for a literal brace`;
    const inner = template.slice(i + 1, close);
    const part = placeholder(inner);
    if (typeof part === 'string') return part;
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push(part);
    i = close + 1;
  }
  if (text) parts.push({ kind: 'text', text });
  return parts;
}

function placeholder(inner: string): TemplatePart | string {
  if ((SIMPLE_PLACEHOLDERS as readonly string[]).includes(inner)) return { kind: 'value', name: inner as SimplePlaceholder };
  if (inner.startsWith('header:')) {
    const name = inner.slice('header:'.length);
    if (!HEADER_NAME.test(name)) return `{${inner}} does not name a header (expected {header:NAME}, such as {header:Content-Type})`;
    return { kind: 'header', name: name.toLowerCase() };
  }
  const hash = BODY_HASH.exec(inner);
  if (hash) return { kind: 'body_hash', algorithm: hash[1] as HashAlgorithm, encoding: hash[2] as DigestEncoding };
  return `unknown placeholder {${inner}}; known: ${PLACEHOLDER_HELP}`;
}

/** Whether signing with these parts needs the whole request body. */
export function templateNeedsBody(parts: readonly TemplatePart[]): boolean {
  return parts.some((part) => part.kind === 'body_hash' || (part.kind === 'value' && part.name === 'body'));
}

export function templateUses(parts: readonly TemplatePart[], name: SimplePlaceholder): boolean {
  return parts.some((part) => part.kind === 'value' && part.name === name);
}

export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}
