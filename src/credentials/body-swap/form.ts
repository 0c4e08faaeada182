import { replaceInString } from './placeholder.ts';
import type { SwapResult } from './index.ts';

// application/x-www-form-urlencoded: each value is matched after decoding ('+' is a space, %XX a
// byte), so `keyway%2Dplaceholder-x` counts like the plain form. Only a value that changes is
// encoded again (the secret's '+', '&', '=', '%' and spaces escaped, so it decodes to itself);
// names and every other pair go on byte for byte, whatever mix of '+' and %20 or %2B they use.

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function swapForm(bytes: Buffer, placeholder: string, secret: string, fields?: ReadonlySet<string>): SwapResult {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return { outcome: 'not_parsed', bytes, count: 0 };
  }
  if (!text.includes(placeholder) && !text.includes('%')) return { outcome: 'none', bytes, count: 0 };
  const pairs = text.split('&');
  let count = 0;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const eq = pair.indexOf('=');
    if (eq === -1) continue; // a name alone: names are never swapped
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      // A value that is not valid percent-encoding: the upstream could read it any way; left whole.
      return { outcome: 'not_parsed', bytes, count: 0 };
    }
    const swapped = replaceInString(value, placeholder, secret);
    if (swapped.count === 0) continue;
    if (fields !== undefined && !fields.has(formName(pair.slice(0, eq)))) continue;
    pairs[i] = `${pair.slice(0, eq + 1)}${encodeFormValue(swapped.text)}`;
    count += swapped.count;
  }
  if (count === 0) return { outcome: 'none', bytes, count: 0 };
  return { outcome: 'swapped', bytes: Buffer.from(pairs.join('&')), count };
}

/** The WHATWG urlencoded serializer's escaping: all but A-Z a-z 0-9 * - . _ escaped, space as '+'. */
export function encodeFormValue(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** A pair's name as the upstream reads it ('+' a space, %XX a byte); one that does not decode matches no field. */
function formName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return '';
  }
}
