// The bytes that give JSON text its structure, for the meters that follow it without parsing it
// (json.ts: where an element ends; json-members.ts: a top-level object's members).
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
export const COMMA = 0x2c;
export const COLON = 0x3a;

/** Where `byte` next occurs in `chunk` from `from`, or `length` (the chunk's) when it does not: a string's end found by memchr, not a loop. */
export function indexOr(chunk: Buffer, byte: number, from: number, length: number): number {
  const at = chunk.indexOf(byte, from);
  return at === -1 ? length : at;
}
