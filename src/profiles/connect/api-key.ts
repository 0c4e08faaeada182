// An agent's API key, as `keyway connect AGENT --api-key-stdin` takes it: read from standard input
// (never the command line: argv is in `ps` and shell history), and made into the grant keyway
// injects on the vendor's API. No message here ever quotes the key.

import { KeywayError } from '../../errors/index.ts';
import type { AgentTarget } from './targets.ts';

/** A key is one token: longer than this is a file piped by mistake. */
const MAX_KEY_CHARS = 4096;

/**
 * The key in `text` (stdin): trimmed; refused when empty, when it spans lines (two keys, or a file
 * piped by mistake), or when it holds a character no API key has (a space inside, a control character).
 */
export function readApiKey(text: string): string {
  const key = text.trim();
  if (key === '') throw new KeywayError('usage', 'no API key on standard input: pipe it in (printf %s "$KEY" | keyway connect AGENT --api-key-stdin)');
  if (/[\r\n]/.test(key)) throw new KeywayError('usage', 'the API key on standard input spans several lines: give one key, on one line');
  if (key.length > MAX_KEY_CHARS) throw new KeywayError('usage', `the API key on standard input is over ${MAX_KEY_CHARS} characters: give the key alone`);
  // Printable ASCII without spaces: every vendor's key is; anything else would go out corrupted or split a header.
  if (!/^[\x21-\x7e]+$/.test(key))
    throw new KeywayError('usage', 'the API key on standard input holds a space or a character no API key has: give the key alone');
  return key;
}

/** The grant (as `keyway grants add` takes it, operations/grant-schema.ts) that puts `key` on the agent's API. */
export function apiKeyGrantInput(target: AgentTarget, grantId: string, key: string): Record<string, unknown> {
  const { hosts, header, format } = target.apiKey;
  return { id: grantId, type: 'api_key', domains: [...hosts], inject: { header, format }, secret: key, labels: { 'coding-agent': target.name } };
}
