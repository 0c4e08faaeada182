import { KeywayError, ProxyError } from '../errors/index.ts';
import { type ClientRequest, type ClientResponse, isHttp2Request, writeHead } from './client-message.ts';
import type { Connection } from './connection.ts';
import type { DoorMint } from './contract.ts';
import { draftOn } from './refuse.ts';
import { sendError } from './respond.ts';

// keyway's door for an agent's own children: inside an intercepted CONNECT to keyway.internal:443
// (self-check.ts routes here), an agent signed in with its own proxy credentials mints and revokes
// children of its own, never anything else (docs/delegation.md, "Self-service"). It admits:
// - `POST /delegate`, Content-Type application/json (a charset, if any, utf-8), no Content-Encoding,
//   a body of at most MAX_DOOR_BODY bytes holding one JSON object with `name` (a-z, 0-9 and -) and
//   optionally `grants` (strings), `rules`, `ttl` (a duration), `depth` (a whole number), `budget`
//   (`usd=2/day`, or the config's budget form, read by the operation), nothing
//   else. The child's id is `PARENT-NAME` (NAME as given when it already begins `PARENT-`): an agent
//   mints only under its own name, so it can neither
//   take a name the operator will use nor be any other agent (an existing one is refused too).
//   201 with the child's id, key (once), proxy URL, chain and expiry.
// - `DELETE /delegate/ID`, no body: ID and its descendants removed, if ID descends from the agent. 200.
// Everything else is refused: another method on /delegate(/…) bad_request; a query string
// bad_request; another type or an encoding bad_request; a bigger body body_too_large (and the
// connection closed); a path other than these not_found; a malformed body bad_request. Minting
// itself is the operations' (the same checks as `keyway agents delegate`: delegation_refused naming
// what is wider, delegation_limited past the mint limit with Retry-After). One audit line per
// request: a mint or revoke is `agent.delegate` / `agents.delete`, decision admin, `agent` the
// child, `actor` `agent:PARENT`; never the key.

export const DOOR_PATH = '/delegate';
/** A mint's body: a name, a few grants, a few rules. */
export const MAX_DOOR_BODY = 16 * 1024;
const FIELDS = new Set(['name', 'grants', 'rules', 'ttl', 'depth', 'budget']);
const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Whether `path` (the query already stripped) is the door's. */
export const isDoorPath = (path: string): boolean => path === DOOR_PATH || path.startsWith(`${DOOR_PATH}/`);

export function answerDelegation(conn: Connection, req: ClientRequest, res: ClientResponse, path: string): void {
  const method = req.method ?? '';
  const draft = draftOn(conn, method, conn.client, path);
  const parent = conn.agent;
  res.once('close', () => {
    draft.event.status = res.statusCode;
    draft.commit(conn.runtime);
  });
  const refuse = (err: ProxyError, unread = false): void => {
    draft.failed(err);
    sendError(res, err);
    // A body left unread (too big, or not wanted): the connection goes rather than read it all.
    if (unread) res.once('finish', () => req.destroy());
    else req.resume();
  };
  // Done: the change's line, set before the answer (its close writes the line).
  const done = (): void => {
    draft.event.decision = 'admin';
    draft.event.code = null;
    draft.event.actor = `agent:${parent.id}`;
  };
  void (async () => {
    conn.standing();
    const door = conn.runtime.delegation;
    if (door === undefined) throw new ProxyError('not_found', 'this keyway mints no children here (no store to write)');
    if ((req.url ?? '').includes('?')) throw new ProxyError('bad_request', `${DOOR_PATH} takes no query string`);
    if (path === DOOR_PATH) {
      if (method !== 'POST') throw new ProxyError('bad_request', `${DOOR_PATH} answers POST only (DELETE ${DOOR_PATH}/NAME revokes)`);
      draft.event.action = 'agent.delegate';
      const input = parseMint(parent.id, await readJson(req));
      // The line is the child's (as `agents delegate`'s is): its chain once it exists, not the asker's.
      draft.event.agent = input.id;
      delete draft.event.chain;
      draft.event.changed = Object.entries({ grants: input.grants, rules: input.rules, ttl: input.ttl, depth: input.depth, budget: input.budget })
        .filter(([, v]) => v !== undefined)
        .map(([k]) => k)
        .join(',');
      if (draft.event.changed === '') delete draft.event.changed;
      const child = await door.mint(parent, input).catch(asDoorError);
      draft.event.chain = child.chain;
      done();
      answer(res, 201, child);
    } else {
      if (method !== 'DELETE') throw new ProxyError('bad_request', `${DOOR_PATH}/NAME answers DELETE only`);
      if (hasBody(req)) throw new ProxyError('bad_request', `DELETE ${DOOR_PATH}/NAME takes no body`);
      draft.event.action = 'agents.delete';
      // An id is a-z, 0-9 and -: nothing to decode, and anything else names no agent.
      const id = path.slice(DOOR_PATH.length + 1);
      if (!NAME.test(id)) throw new ProxyError('not_found', `no such agent among the children of agent "${parent.id}"`);
      draft.event.agent = id;
      delete draft.event.chain;
      const removed = await door.revoke(parent.id, id).catch(asDoorError);
      done();
      answer(res, 200, removed);
    }
  })().catch((err: unknown) => {
    const proxyError = err instanceof ProxyError ? err : new ProxyError('internal_error', 'keyway failed to answer the delegation door', { cause: err });
    // A mint or revoke that was asked for, refused: its change line names who asked.
    if (draft.event.action !== undefined) draft.event.actor = `agent:${parent.id}`;
    refuse(proxyError, err instanceof BodyRefused || (hasBody(req) && !req.readableEnded));
  });
}

function answer(res: ClientResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  writeHead(res, status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Refused before the body was read whole: the connection is closed rather than the rest read. */
class BodyRefused extends ProxyError {}

function hasBody(req: ClientRequest): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  if (req.headers['transfer-encoding'] !== undefined) return true;
  // HTTP/2 says the end of a body by its stream, not a header: one still open may carry one.
  return isHttp2Request(req) && !req.stream.endAfterHeaders;
}

async function readJson(req: ClientRequest): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').toLowerCase().replace(/\s+/g, '');
  if (type !== 'application/json' && type !== 'application/json;charset=utf-8') {
    throw new BodyRefused('bad_request', `${DOOR_PATH} takes Content-Type application/json (utf-8) only`);
  }
  if (req.headers['content-encoding'] !== undefined) throw new BodyRefused('bad_request', `${DOOR_PATH} takes no Content-Encoding`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_DOOR_BODY) throw new BodyRefused('body_too_large', `a ${DOOR_PATH} body is at most ${MAX_DOOR_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DOOR_BODY) throw new BodyRefused('body_too_large', `a ${DOOR_PATH} body is at most ${MAX_DOOR_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
  } catch {
    throw new ProxyError('bad_request', `${DOOR_PATH}: the body is not JSON in UTF-8`);
  }
}

/** The body's fields, checked for shape; what they may be is the operation's to judge. */
function parseMint(parentId: string, body: unknown): DoorMint {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ProxyError('bad_request', `${DOOR_PATH}: expected a JSON object`);
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw new ProxyError('bad_request', `${DOOR_PATH}: unknown field ${unknown.map((k) => `"${k.slice(0, 32)}"`).join(', ')}`);
  const { name, grants, rules, ttl, depth, budget } = fields;
  if (typeof name !== 'string' || !NAME.test(name)) throw new ProxyError('bad_request', 'name: expected a-z, 0-9 and -');
  if (grants !== undefined && (!Array.isArray(grants) || !grants.every((g) => typeof g === 'string'))) {
    throw new ProxyError('bad_request', 'grants: expected a list of grant ids');
  }
  if (ttl !== undefined && typeof ttl !== 'string') throw new ProxyError('bad_request', 'ttl: expected a duration such as 15m or 1h');
  if (depth !== undefined && !Number.isInteger(depth)) throw new ProxyError('bad_request', 'depth: expected a whole number');
  // Under the parent's own name: NAME becomes PARENT-NAME, unless it already begins so.
  const id = name.startsWith(`${parentId}-`) ? name : `${parentId}-${name}`;
  return { id, grants: grants as string[] | undefined, rules, ttl: ttl as string | undefined, depth: depth as number | undefined, budget };
}

/** The operation's refusals, as the agent gets them. */
function asDoorError(err: unknown): never {
  if (!(err instanceof KeywayError)) throw err;
  const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
  switch (err.code) {
    case 'delegation_refused':
      throw new ProxyError('delegation_refused', err.message);
    case 'delegation_limited':
      throw new ProxyError('delegation_limited', err.message, { retryAfter: typeof retryAfter === 'number' ? retryAfter : 60 });
    case 'conflict':
      // An agent of that id exists: never overwritten, whoever made it.
      throw new ProxyError('delegation_refused', err.message);
    case 'not_found':
      throw new ProxyError('not_found', err.message);
    case 'usage':
      throw new ProxyError('bad_request', err.message);
    default:
      throw new ProxyError('internal_error', 'keyway could not mint the child', { cause: err });
  }
}
