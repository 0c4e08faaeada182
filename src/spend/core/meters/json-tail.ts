// The usage of a whole JSON answer too large to hold (past the meters' 8 MiB bound): OpenAI's and
// Anthropic's answers end with their `usage` member, so it is read from the body's last bytes.
// An embeddings answer for a few hundred inputs is tens of MiB, and without this its usage was lost
// (counted as unknown, which no budget sees).
//
// Only a `usage` object that is the last member of the top-level object is taken: the tail must
// end with `"usage": {…}}`. A `"usage"` met in the raw bytes right after a `,` or `{` (a little
// white space between allowed) is the key `usage`: in valid JSON a string holding that text has its
// quotes escaped, and `\"usage"` closes a key that ends with a quote (`"\"usage"` is the key
// `"usage`). A key whose object is followed by one closing brace and the end of the body belongs to
// the outermost object, not to a nested one. The model before it is read by the same rule.

const USAGE_KEY = /"usage"\s*:\s*\{/g;
/** The model named just before the usage (`"model": "…",`), as OpenAI's embeddings answer puts it. */
const MODEL_BEFORE = /[,{]\s*"model"\s*:\s*"([^"\\]{1,200})"\s*,\s*$/;

/** `{usage, model?}` read from the end of a JSON text, or undefined when it does not end with a top-level usage object. */
export function usageAtEnd(tail: string): { usage: unknown; model?: string } | undefined {
  let last = -1;
  let brace = -1;
  for (const match of tail.matchAll(USAGE_KEY)) {
    last = match.index;
    brace = match.index + match[0].length - 1;
  }
  if (last === -1 || !/[,{]\s*$/.test(tail.slice(Math.max(0, last - 64), last))) return undefined;
  const end = objectEnd(tail, brace);
  if (end === -1 || !/^\s*\}\s*$/.test(tail.slice(end))) return undefined;
  let usage: unknown;
  try {
    usage = JSON.parse(tail.slice(brace, end));
  } catch {
    return undefined;
  }
  const model = MODEL_BEFORE.exec(tail.slice(0, last))?.[1];
  return model === undefined ? { usage } : { usage, model };
}

/** The index just past the object opening at `open` (strings skipped), or -1 if it does not close. */
function objectEnd(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}
