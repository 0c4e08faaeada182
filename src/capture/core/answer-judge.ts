import type { AnswerBody } from './answer-body.ts';
import { wholePlaceholder } from './placeholder.ts';
import type { CaptureSettings } from './settings.ts';
import { looksLikeCredential, METADATA_MEMBERS, namesToken } from './token-shape.ts';

// The body of an answer on a login host, judged before any of it reaches the agent (its head and
// trailers: answer-head.ts; an HTML page's fields: html-fields.ts). Two rules, one per place:
//
// At a watched token endpoint, default deny. Admitted: the members the grant captures (a non-empty
// string each, swapped for a placeholder), the members it names in capture.pass, the standard
// metadata members (token-shape.ts), and any value that does not look like a credential (a number,
// a boolean, a short string, prose). Everything else (a long run of characters under a name nobody
// declared, in a body member at any depth, or a captured member that is not a string) refuses the
// answer: keyway cannot tell a token it does not capture from one it does.
//
// On any other path of a login host (discovery, keys, the login pages), the body is the identity
// provider's, mostly public (a JWKS is all long runs): refused is what names a token (a member or
// form field whose name says token, holding a credential-shaped value; a JWT holding one, as a JARM
// `response` does) or what keyway cannot read.

/** Why an answer is refused: its fields named (never a value); `unreadable` when keyway could not read it all. */
export interface Refusal {
  readonly unreadable: boolean;
  readonly reason: string;
}

/** How deep an answer's JSON is read (a token answer is flat; Slack's nests one level). Deeper: refused. */
export const MAX_DEPTH = 16;

/**
 * Judges a watched endpoint's body, read: every member at every depth. `captured`: the members
 * the grant captures (they must be strings); undefined when nothing is captured (an error answer).
 */
export function judgeWatchedBody(answer: Exclude<AnswerBody, { format: 'unreadable' }>, settings: CaptureSettings, captured: boolean): Refusal | undefined {
  const fields = new Set(settings.fields);
  const judgeValue = (path: string, name: string, value: unknown, depth: number): Refusal | undefined => {
    if (fields.has(path)) {
      if (typeof value === 'string') return captured || value === '' ? undefined : refused(`${quote(path)} in an answer keyway does not capture`);
      if (value === null) return undefined;
      return refused(`${quote(path)} holding ${kindOf(value)} where a token (a string) is expected`);
    }
    if (settings.pass.fields.has(path) || settings.pass.fields.has(name)) return undefined;
    if (typeof value === 'string') {
      if (METADATA_MEMBERS.has(name)) return undefined;
      if (looksLikeCredential(value) && wholePlaceholder(value) === undefined)
        return refused(`${quote(path)}, which looks like a credential and which the grant neither captures (capture.fields) nor passes (capture.pass.fields)`);
      return undefined;
    }
    if (typeof value === 'object' && value !== null) return walk(value, path, depth + 1);
    return undefined;
  };
  const walk = (value: object, path: string, depth: number): Refusal | undefined => {
    if (depth > MAX_DEPTH) return unreadable(`its JSON nests deeper than ${MAX_DEPTH} levels at ${quote(path)}`);
    for (const [name, member] of Object.entries(value)) {
      const at = path === '' ? name : `${path}.${name}`;
      const found = judgeValue(at, name, member, depth);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  if (answer.format === 'form') {
    for (const [name, value] of answer.value) {
      const found = judgeValue(name, name, value, 0);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  return walk(answer.value, '', 0);
}

/**
 * Judges an answer on another path of a login host (or one a grant only checks): a token by its
 * name, in any member at any depth, a JWT's claims included. `names`: the grant's own field names,
 * which count as token names too.
 */
export function judgeOtherBody(answer: Exclude<AnswerBody, { format: 'unreadable' }>, names: ReadonlySet<string>): Refusal | undefined {
  if (answer.format === 'form') {
    for (const [name, value] of answer.value) {
      const found = judgeNamed(name, name, value, names, 0);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  return walkNamed(answer.value, '', names, 0);
}

function walkNamed(value: object, path: string, names: ReadonlySet<string>, depth: number): Refusal | undefined {
  if (depth > MAX_DEPTH) return unreadable(`its JSON nests deeper than ${MAX_DEPTH} levels at ${quote(path)}`);
  for (const [name, member] of Object.entries(value)) {
    const found = judgeNamed(path === '' ? name : `${path}.${name}`, name, member, names, depth);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function judgeNamed(path: string, name: string, value: unknown, names: ReadonlySet<string>, depth: number): Refusal | undefined {
  const tokenName = namesToken(name) || names.has(name) || names.has(path);
  if (typeof value === 'string') {
    if (tokenName && looksLikeCredential(value) && wholePlaceholder(value) === undefined)
      return refused(`${quote(path)} on a path no capture endpoint watches`);
    const claims = jwtClaims(value);
    if (claims !== undefined) return walkNamed(claims, `${path}(JWT)`, names, depth + 1);
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    if (tokenName && !Array.isArray(value) && Object.keys(value).length > 0)
      return refused(`${quote(path)} holding an object on a path no capture endpoint watches`);
    return walkNamed(value, path, names, depth + 1);
  }
  return undefined;
}

/** A compact JWS or JWE-less JWT's claims, when `value` is one with a JSON object payload. */
function jwtClaims(value: string): object | undefined {
  const parts = value.split('.');
  if (parts.length !== 3 || value.length < 16 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p) || p === '')) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null) return undefined;
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof claims === 'object' && claims !== null ? claims : undefined;
  } catch {
    return undefined;
  }
}

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function refused(reason: string): Refusal {
  return { unreadable: false, reason };
}

export function unreadable(reason: string): Refusal {
  return { unreadable: true, reason };
}

/** A name for a message: short, quoted, never a value. */
export function quote(name: string): string {
  return JSON.stringify(name.length <= 60 ? name : `${name.slice(0, 60)}…`);
}
