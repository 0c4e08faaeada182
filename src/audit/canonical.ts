// A line verifies only if it is byte for byte what keyway writes. The chain hash covers a
// re-serialisation of the parsed line (record.ts resealLine), and many texts parse to one record: a
// duplicate key before the real one (JSON.parse keeps the last, a grep or another parser may take the
// first), a `__proto__` member (JSON.parse makes it a field the writer drops), `\u0061` for `a`,
// spaces, `1.0` for `1`, trailing bytes. Each would verify as the line keyway wrote. Holding the text
// to the writer's own bytes for what it parses to rules them all out at once: JSON.stringify never
// writes a duplicate key, an optional escape or whitespace. Every verifier feeds lines through
// ChainChecker, which asks this, so the file, the table, the public-key and the bundle checks agree.

import type { AuditLine } from './record.ts';

/**
 * Why `text` is not the line keyway writes for what it parses to (`written`: resealLine's bytes),
 * as one clause naming the seq; null when it is exactly that line.
 */
export function notCanonical(text: string, parsed: AuditLine, written: string): string | null {
  if (text === written) return null;
  const lead = `seq ${parsed.seq} is not keyway's canonical form`;
  if (hasProtoMember(parsed)) return `${lead}: it has a "__proto__" member, which keyway never writes`;
  let at = 0;
  while (at < text.length && text.charCodeAt(at) === written.charCodeAt(at)) at++;
  return `${lead}: its bytes part from what keyway writes for its content at character ${at + 1} (a duplicate key, an escape, spacing or a member keyway does not write)`;
}

/** An own `__proto__` key anywhere in a parsed value (JSON.parse makes one; an object literal cannot). */
function hasProtoMember(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Object.hasOwn(value, '__proto__')) return true;
  return Object.values(value).some(hasProtoMember);
}
