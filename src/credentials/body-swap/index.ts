import { swapForm } from './form.ts';
import { swapJson } from './json.ts';
import { replaceInBytes } from './placeholder.ts';

// A grant's placeholder replaced by its secret inside a request body or a WebSocket text message
// (inject: {body: true}). Pure: bytes in, bytes out, and what happened for the audit line.

export { ENV_PLACEHOLDER, envPlaceholder, grantPlaceholder, isKeywayPlaceholder, PLACEHOLDER_PREFIX } from './placeholder.ts';

/**
 * What the swap did, as the audit line's `body_swap` says it: `swapped` (at least one placeholder
 * replaced), `none` (none found), `not_parsed` (a JSON body that is not valid JSON, a form value
 * that is not valid percent-encoding, a body that is not UTF-8 or carries a Content-Encoding: sent
 * as it came), `too_large` (over proxy.max_body_swap), `no_memory` (the agent's memory for held
 * bodies spent), `other_type` (a content type keyway does not swap in).
 */
export type BodySwapOutcome = 'swapped' | 'none' | 'not_parsed' | 'too_large' | 'no_memory' | 'other_type';

export interface SwapResult {
  outcome: 'swapped' | 'none' | 'not_parsed';
  bytes: Buffer;
  count: number;
}

export type SwapFormat = 'json' | 'form' | 'text';

/** How a body of this Content-Type is swapped, or undefined: not at all. */
export function swapFormatOf(contentType: string | undefined): SwapFormat | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  if (type.startsWith('text/')) return 'text';
  return undefined;
}

/**
 * `fields`: the grant's inject.body.fields, the only JSON members (the nearest member name over the
 * value) and form fields swapped in; undefined: any. A text body has no fields: with them, untouched.
 */
export function swapBody(format: SwapFormat, bytes: Buffer, placeholder: string, secret: string, fields?: ReadonlySet<string>): SwapResult {
  if (format === 'json') return swapJson(bytes, placeholder, secret, fields);
  if (format === 'form') return swapForm(bytes, placeholder, secret, fields);
  if (fields !== undefined) return { outcome: 'none', bytes, count: 0 };
  return swapText(bytes, placeholder, secret);
}

/** Plain replacement: text/* bodies. */
export function swapText(bytes: Buffer, placeholder: string, secret: string): SwapResult {
  const replaced = replaceInBytes(bytes, placeholder, secret);
  return { outcome: replaced.count > 0 ? 'swapped' : 'none', bytes: replaced.bytes, count: replaced.count };
}

/**
 * A WebSocket text message: as JSON when it is JSON (Home Assistant's auth message, JSON-RPC), so
 * the secret is escaped as JSON needs and keys stay; otherwise plain replacement.
 */
export function swapMessage(bytes: Buffer, placeholder: string, secret: string, fields?: ReadonlySet<string>): SwapResult {
  const first = firstNonSpace(bytes);
  if (first === 0x7b || first === 0x5b) {
    const json = swapJson(bytes, placeholder, secret, fields);
    if (json.outcome !== 'not_parsed') return json;
  }
  if (fields !== undefined) return { outcome: 'none', bytes, count: 0 };
  return swapText(bytes, placeholder, secret);
}

function firstNonSpace(bytes: Buffer): number | undefined {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  return undefined;
}
