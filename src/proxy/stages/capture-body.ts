import { SAME_ANSWER_MS } from '../../capture/core/captured.ts';
import { formPlacement, jsonPlacement, type Placement } from '../../capture/core/positions.ts';
import { utf8Reading } from '../../net/media-type.ts';
import { ProxyError } from '../../errors/index.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { RequestBodyStage } from './body.ts';
import type { CaptureExchange } from './capture-exchange.ts';
import { LocalAnswer } from './hooks.ts';
import { checkRecord, realValues, refuseMisplaced, useRecords } from './capture.ts';
import type { StagedRequest } from './request.ts';

// Login capture on the request body: in a JSON or form body, a credential field's placeholder (a
// refresh request's refresh_token above all) gets its real value; one anywhere else is refused. A
// refresh through a placeholder takes the refresh token's lock until its answer is captured: one
// refresh per token across every process and replica, as keyway's own OAuth grants refresh.

/** How long a refresh waits for another refresh with the same token (its token call is bounded by the upstream timeout). */
const LOCK_WAIT_MS = 30_000;

export const captureBody: RequestBodyStage = {
  name: 'capture-body',
  run(request, body) {
    const capture = request.login;
    if (capture === undefined || capture.checkOnly || body.kind === 'none') return undefined;
    const { headers } = request.req;
    const type = headers['content-type'];
    const reading = type === undefined ? undefined : utf8Reading(type);
    const format = reading?.ok ? formatOf(reading.mediaType.type) : undefined;
    // A body keyway does not read as the upstream would (another type, charset or an encoding)
    // keeps whatever placeholder it has: the upstream gets a worthless string, never a token.
    const encoding = headers['content-encoding'];
    if (format === undefined || (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')) return undefined;
    if (body.kind === 'kept') return resolveKept(request, capture, body.body, format);
    if (request.holder === undefined) return undefined;
    return readForReplay(request.req, request.holder, body.stream, request.conn.decisions.config.proxy.max_body_swap).then((read) =>
      read.kind === 'kept' ? resolveKept(request, capture, read.body, format) : read,
    );
  },
};

function formatOf(mediaType: string): 'json' | 'form' | undefined {
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) return 'json';
  if (mediaType === 'application/x-www-form-urlencoded') return 'form';
  return undefined;
}

async function resolveKept(request: StagedRequest, capture: CaptureExchange, bytes: Buffer, format: 'json' | 'form'): Promise<RequestBody> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'kept', body: bytes }; // not UTF-8: nothing resolved in it, nothing rewritten
  }
  // The body's positions, and at a watched endpoint the refresh's (and a revocation's) field.
  const named = capture.grant.logins.positionNames.body;
  const fields = capture.endpoint === undefined ? named : new Set([...named, 'refresh_token', 'token']);
  const placement: Placement = format === 'json' ? jsonPlacement(text, fields) : formPlacement(text, 'the form body', fields, 'body');
  refuseMisplaced(request, placement, text);
  if (placement.kind !== 'placed') return { kind: 'kept', body: bytes };
  const refresh = placement.placed.find((p) => p.field === 'refresh_token');
  const records = await realValues(request, capture, placement.placed);
  if (refresh !== undefined && capture.endpoint !== undefined) await refreshOnce(request, capture, refresh.key);
  const resolved = Buffer.from(placement.rewrite(useRecords(request, capture, records)), 'utf8');
  request.outgoing!.headers['content-length'] = String(resolved.length);
  return { kind: 'kept', body: resolved };
}

/**
 * A refresh through a placeholder refresh token at a watched endpoint (the placeholder already
 * checked as this grant's and agent's): under the token's lock, an exchange another request made
 * with it already is answered with that exchange's answer (rotated away: always; not rotated:
 * within SAME_ANSWER_MS), else this request goes up, holding the lock until its answer is captured.
 */
async function refreshOnce(request: StagedRequest, capture: CaptureExchange, key: string): Promise<void> {
  const book = request.conn.issuing.captures;
  const release = await book.lock(key, LOCK_WAIT_MS).catch((err: unknown) => {
    throw new ProxyError('token_refresh_failed', 'another refresh with the same captured refresh token did not finish in time', { cause: err });
  });
  capture.holdLock(release);
  const record = checkRecord(request, capture, await book.read(key));
  if (record.exchanged_at !== undefined) {
    const answer = record.answer;
    if (answer === undefined) {
      throw new ProxyError('placeholder_refused', 'this refresh token was exchanged already, and that answer was refused (capture_unlisted) or lost', {
        grant: capture.grant.id,
        hint: 'log in again through keyway',
      });
    }
    if (answer.rotated || Date.now() - Date.parse(record.exchanged_at) < SAME_ANSWER_MS) {
      capture.release();
      // That exchange's answer again (placeholders only), from keyway, with nothing sent upstream.
      throw new LocalAnswer(answer.status, answer.content_type, answer.body, { captured_again: true });
    }
  }
  capture.refreshing = { key, record };
  // The server rotates the token whether the client stays or not: its answer is read and captured
  // all the same (the next refresh with the old one gets it).
  request.finishesWithoutClient = true;
}
