// How one secret source is read: each type is one file here, built from its config entry
// (create-reader.ts picks it). A reader fetches one item's text; the cache around it
// (source-secrets.ts) decides when. A reader's errors say why in words that never quote a value
// (SourceFailure), since they reach audit lines and logs. Readers import this file and it imports
// none of them, so the readers and what picks them stay out of one circle.
import type { SourcedSecret } from '../../config/secret-sources.ts';

export interface SourceReader {
  /** The item's text: the value, or the field `item.key` of a JSON value. */
  fetch(item: SourcedSecret, signal: AbortSignal): Promise<string>;
}

/** A fetch that failed, with a reason fit for an audit line (the source's error code and message, never a value). */
export class SourceFailure extends Error {}

/**
 * The field `key` of a JSON object's text, as a string (a number or boolean as JSON writes it), or
 * the text itself when no key is asked for. A value that is not JSON, or has no such field, fails
 * without quoting it.
 */
export function pickField(text: string, key: string | undefined): string {
  if (key === undefined) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SourceFailure(`the value is not a JSON object, so it has no field "${key}"`);
  }
  return fieldOf(parsed, key);
}

/** A field of an object already parsed (Vault's data), as pickField gives it. */
export function fieldOf(parsed: unknown, key: string): string {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new SourceFailure(`the value is not a JSON object, so it has no field "${key}"`);
  if (!Object.hasOwn(parsed, key)) {
    const fields = Object.keys(parsed).slice(0, 20);
    throw new SourceFailure(`the value has no field "${key}" (its fields: ${fields.join(', ') || 'none'})`);
  }
  const value = (parsed as Record<string, unknown>)[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  throw new SourceFailure(`the field "${key}" is empty`);
}
