// Reading the fields of a JSON request body: each of the expected type or a 400 that names the
// field (never its value: a body may hold a secret), and no field the route does not know (a typo,
// or `secret` sent where it is not taken, is refused rather than silently ignored).
import type { IncomingMessage } from 'node:http';
import type { AdminContext } from '../router.ts';
import { AdminError } from '../../errors/index.ts';

export type JsonBody = Record<string, unknown>;

function bad(message: string): AdminError {
  return new AdminError('bad_request', message);
}

/** The body, refusing fields not in `known`. An empty body (no Content-Type, no bytes) is `{}` where `optional`. */
export async function readBody(ctx: AdminContext, known: readonly string[], optional = false): Promise<JsonBody> {
  if (optional && !sendsBody(ctx.req)) return {};
  const body = await ctx.body();
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw bad(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; expected ${known.join(', ')}`);
  }
  return body;
}

function sendsBody(req: IncomingMessage): boolean {
  return req.headers['content-type'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

export function optionalString(body: JsonBody, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${name}: expected a string`);
  return v;
}

export function requiredString(body: JsonBody, name: string): string {
  const v = optionalString(body, name);
  if (v === undefined) throw bad(`${name}: required`);
  return v;
}

export function optionalStrings(body: JsonBody, name: string): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(`${name}: expected a list of strings`);
  return v as string[];
}

/**
 * A body with its null fields left out, as JSON clients write an absent one: `{"inject": null}` or
 * `{"inject": {"query": null}}` says nothing. The grant's schemas (operations/grant-schema.ts) take
 * absent fields, never null ones.
 */
export function withoutNulls(body: JsonBody): JsonBody {
  const out: JsonBody = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === null) continue;
    out[key] = key === 'inject' && typeof value === 'object' && !Array.isArray(value) ? withoutNulls(value as JsonBody) : value;
  }
  return out;
}

/** A secret: a string (api_key, bearer, basic `user:password`) or an object (oauth2, client_credentials, basic). */
export function secretField(body: JsonBody, required: boolean): string | Record<string, unknown> | undefined {
  const v = body['secret'];
  if (v === undefined || v === null) {
    if (required) throw bad('secret: required');
    return undefined;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  throw bad('secret: expected a string or an object');
}
