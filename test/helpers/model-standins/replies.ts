// What a model stand-in answers and which credentials it takes: shared by the vendor handlers, so a
// test (issue 63's spend metering among them) sets the text and the token counts of each reply.
import type { StandinRequest } from './server.ts';

/** Token counts as every vendor reports them, in its own field names (each handler maps them). */
export interface Usage {
  input: number;
  output: number;
  /** Prompt tokens read from the vendor's cache (Anthropic cache_read_input_tokens, OpenAI cached_tokens, Gemini cachedContentTokenCount). */
  cacheRead?: number;
  /** Prompt tokens written to the cache (Anthropic cache_creation_input_tokens; the others have none). */
  cacheWrite?: number;
  /** Reasoning tokens (OpenAI reasoning_tokens, Gemini thoughtsTokenCount), counted within output. */
  reasoning?: number;
}

export interface ModelReply {
  text: string;
  usage: Usage;
  /** The model named in the answer; the request's model when absent. */
  model?: string;
}

/** A fixed reply, or one made per request (say, numbered, or echoing what was asked). */
export type ReplySource = Partial<ModelReply> | ((req: StandinRequest) => Partial<ModelReply>);

export const DEFAULT_USAGE: Usage = { input: 11, output: 7 };

export function replyFor(source: ReplySource | undefined, req: StandinRequest, fallbackText: string): ModelReply {
  const given = typeof source === 'function' ? source(req) : (source ?? {});
  return { text: given.text ?? fallbackText, usage: { ...DEFAULT_USAGE, ...given.usage }, ...(given.model === undefined ? {} : { model: given.model }) };
}

/**
 * What a stand-in accepts: static API keys (`keys`), and OAuth access tokens, asked per request so
 * that a token endpoint stand-in's current tokens count and a rotated-away one stops working.
 */
export interface Accepts {
  keys?: readonly string[];
  accessToken?: (token: string) => boolean;
}

export function acceptsKey(accepts: Accepts, key: string | undefined): boolean {
  return key !== undefined && key !== '' && (accepts.keys ?? []).includes(key);
}

export function acceptsAccessToken(accepts: Accepts, token: string | undefined): boolean {
  return token !== undefined && token !== '' && accepts.accessToken?.(token) === true;
}

/** Splits a reply's text into a few pieces, so a stream has more than one delta to join. */
export function pieces(text: string): string[] {
  const words = text.split(/(?<=\s)/);
  if (words.length <= 1) return [text];
  const half = Math.ceil(words.length / 2);
  return [words.slice(0, half).join(''), words.slice(half).join('')];
}
