import { ProxyError } from '../errors/index.ts';
import { stripQuery } from '../audit/index.ts';
import { type ClientRequest, type ClientResponse, writeHead } from './client-message.ts';
import type { Connection } from './connection.ts';
import { answerDelegation, DOOR_PATH, isDoorPath } from './delegation-door.ts';
import { draftOn } from './refuse.ts';
import { sendError } from './respond.ts';

/**
 * A name keyway answers itself, inside an intercepted CONNECT: `keyway doctor` checks that a
 * client goes through keyway and trusts its CA without any real host, grant or network.
 */
export const SELF_CHECK_HOST = 'keyway.internal';
export const SELF_CHECK_PATH = '/healthz';

export function answerSelfCheck(conn: Connection, req: ClientRequest, res: ClientResponse): void {
  const path = stripQuery(req.url ?? '/');
  // An agent's door for its own children (delegation-door.ts): its own admission, its own lines.
  if (isDoorPath(path)) return answerDelegation(conn, req, res, path);
  const draft = draftOn(conn, req.method ?? null, conn.client, path);
  // Its own decision: nothing was injected or forwarded, and nothing was refused either (not a denial
  // in the dashboard, /metrics or the overview).
  draft.event.decision = 'self_check';
  draft.event.code = 'self_check';
  res.once('close', () => {
    draft.event.status = res.statusCode;
    draft.commit(conn.runtime);
  });
  if (path !== SELF_CHECK_PATH) {
    req.resume();
    sendError(res, new ProxyError('not_found', `${SELF_CHECK_HOST} answers only ${SELF_CHECK_PATH} and ${DOOR_PATH}`));
    return;
  }
  req.resume();
  const body = JSON.stringify({ ok: true, service: 'keyway', agent: conn.agent.id });
  writeHead(res, 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
