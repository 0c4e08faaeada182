import { replaceInString } from './placeholder.ts';
import type { SwapResult } from './index.ts';

// JSON bodies are swapped by scanning tokens, not by parsing and serialising again: JSON.parse
// would round large integers (2^53 and up), collapse duplicate keys to the last, and reformat the
// whole body. Here every byte outside a changed string value goes on as the client wrote it. The
// body is still parsed once first, so only valid JSON is touched (and the scan below can assume it).
// Each string value is matched decoded (`keyway\u002dplaceholder-x` counts: matching the raw text
// only would make the escaped form a way around the swap, and the two forms mean the same string
// to the upstream); a changed one is written back with JSON.stringify, so the secret is escaped as
// JSON needs. Object keys are never swapped.

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function swapJson(bytes: Buffer, placeholder: string, secret: string, fields?: ReadonlySet<string>): SwapResult {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return { outcome: 'not_parsed', bytes, count: 0 };
  }
  // Neither the placeholder nor an escape that could spell it: nothing can be swapped.
  if (!text.includes(placeholder) && !text.includes('\\')) return { outcome: 'none', bytes, count: 0 };
  try {
    JSON.parse(text);
  } catch {
    return { outcome: 'not_parsed', bytes, count: 0 };
  }
  const stack: number[] = [];
  // Beside each open object or array: the member name a value in it belongs to (an object's last
  // key; an array inherits the name it is the value of), for `fields`.
  const names: Array<string | undefined> = [];
  let expectKey = false;
  let out = '';
  let from = 0;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      const isKey = stack[stack.length - 1] === 0x7b && expectKey;
      if (isKey && fields !== undefined) names[names.length - 1] = JSON.parse(text.slice(i, j + 1)) as string;
      const named = fields === undefined || (names.length > 0 && fields.has(names[names.length - 1] ?? ''));
      if (!isKey && named) {
        const token = text.slice(i, j + 1);
        if (token.includes(placeholder) || token.includes('\\')) {
          const swapped = replaceInString(JSON.parse(token) as string, placeholder, secret);
          if (swapped.count > 0) {
            out += text.slice(from, i) + JSON.stringify(swapped.text);
            from = j + 1;
            count += swapped.count;
          }
        }
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(c);
      names.push(undefined);
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(c);
      names.push(names[names.length - 1]);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      names.pop();
      expectKey = false;
    } else if (c === 0x3a /* : */) {
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] === 0x7b;
    }
  }
  if (count === 0) return { outcome: 'none', bytes, count: 0 };
  return { outcome: 'swapped', bytes: Buffer.from(out + text.slice(from)), count };
}
