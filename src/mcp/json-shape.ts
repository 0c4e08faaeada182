// A strict look at a JSON text before anything reads it as JSON-RPC: nesting no deeper than a
// bound (a body of 100,000 open brackets is refused in one pass, with no recursion to overflow),
// and no object with the same key twice. JSON.parse keeps the last of duplicate keys while another
// reader (the MCP server) may keep the first: {"name":"search","name":"delete"} would be judged as
// one tool and run as the other. Such a message is refused whole, wherever the duplicate is.

/** Deeper than any real MCP message; arguments are JSON, but not 64 levels of it. */
export const MAX_DEPTH = 64;

/** Why the text is refused, or undefined when it is well-formed within the bounds. Assumes nothing of validity: JSON.parse still runs after. */
export function jsonShapeProblem(text: string, maxDepth = MAX_DEPTH): string | undefined {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (j < text.length) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) break;
        else j++;
      }
      if (j >= text.length) return 'a string is not closed';
      const top = open[open.length - 1];
      if (top && expectKey) {
        // A key with no escape is its text as written (a control character in it fails the
        // JSON.parse that runs after); one with an escape is decoded, so that "na\u006de" is
        // the same key as "name". Decoding every key cost a JSON.parse per key per message.
        let key: string;
        try {
          key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        } catch {
          return 'an object key is not a valid JSON string';
        }
        if (top.has(key)) return `the key ${JSON.stringify(key.slice(0, 64))} appears twice in one object`;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (open.length >= maxDepth) return `nested deeper than ${maxDepth} levels`;
      open.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = open[open.length - 1] instanceof Set;
    }
  }
  return undefined;
}
