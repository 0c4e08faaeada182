import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { ProxyError } from '../../errors/index.ts';
import { utf8Reading } from '../../net/media-type.ts';
import { RequestJsonReader } from '../../spend/request/request-json.ts';
import { type ModelExchange, SentBodyReader } from './model-exchange.ts';
import type { RequestBodyStage } from './body.ts';
import type { StagedRequest } from './request.ts';

/**
 * A metered request's body, read as it goes up by a strict JSON reader (spend/request/request-json.ts), for
 * what it says (its model, its output cap, a conversation it continues: ModelExchange.facts), which
 * the close uses when the answer names no model or never comes (docs/spend.md, "What a request
 * costs at least"). Runs on every metered request, budget or not: the facts price a request left
 * before its answer. Without a budget the pieces are read as undici sends them (the request-sent
 * hook model-sent), with no stream of the stage's own: a few µs a small body (docs/perf/spend.md).
 *
 * Under a budget it is also a guard, default deny. Admitted: an uncompressed body (no
 * Content-Encoding, or identity) of type application/json in UTF-8 that the reader admits, and
 * that continues no conversation the vendor keeps (`previous_response_id`, `conversation`, Gemini's
 * `cachedContent`: their input is more than keyway sees, and a chain left before its usage would
 * count only its last turn). Everything else is refused with `budget_unmeterable` and one line
 * saying why. The body is never held whole for this: each piece is read, and passed on only once
 * the next one has been read, so a body refused at its end still never reaches the upstream whole
 * (the upstream has no complete request to bill). Without a budget the body goes as it came.
 */
export const modelBody: RequestBodyStage = {
  name: 'model-body',
  run(request, body) {
    const model = request.model;
    if (model === undefined || body.kind === 'none') return undefined;
    const budgeted = request.conn.spending.spend.budgeted(model.scope);
    const unread = unreadable(request.req.headers);
    if (unread !== undefined) {
      if (budgeted) throw refusal(request, unread);
      return undefined;
    }
    const reader = new RequestJsonReader(model.plan.api !== 'gemini');
    if (body.kind === 'kept') {
      const reason = reader.push(body.body) ?? reader.end();
      model.facts = reader.facts();
      if (budgeted) judge(request, reason, model);
      return undefined;
    }
    // Without a budget, and with no placeholder of a body-swap grant to read before its secret
    // replaces it, the body is read as undici sends it: no stream of its own (measured: docs/perf/spend.md).
    if (!budgeted && request.grant?.bodyPlaceholder === undefined) {
      model.bodyRead = new SentBodyReader(reader);
      return undefined;
    }
    const read = budgeted ? guarded(request, model, reader, body.stream) : watched(model, reader, body.stream);
    return { ...body, stream: Readable.from(read, { objectMode: false }) };
  },
};

/** Why a body cannot be read as JSON at all, from its head; undefined when it can. */
function unreadable(headers: IncomingHttpHeaders): string | undefined {
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return 'a compressed body';
  const reading = utf8Reading(headers['content-type']);
  if (!reading.ok) return `a body keyway cannot read as JSON: ${reading.reason}`;
  if (reading.mediaType.type !== 'application/json') return 'a body whose Content-Type is not application/json';
  return undefined;
}

/** Under a budget: each piece read before the one before it goes on; a refusal stops the body short of its end. */
async function* guarded(request: StagedRequest, model: ModelExchange, reader: RequestJsonReader, source: Readable): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  // Not destroyed when a refusal ends the loop: the client's request stays open for keyway's answer.
  for await (const chunk of source.iterator({ destroyOnReturn: false })) {
    judge(request, reader.push(chunk as Buffer), model, reader);
    if (held !== undefined) yield held;
    held = chunk as Buffer;
  }
  const reason = reader.end();
  model.facts = reader.facts();
  judge(request, reason, model);
  if (held !== undefined) yield held;
}

/** Without a budget: read as it passes, for the facts; a body the reader refuses is let go unread. */
async function* watched(model: ModelExchange, reader: RequestJsonReader, source: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (reader.refused === undefined) reader.push(chunk as Buffer);
    yield chunk as Buffer;
  }
  reader.end();
  model.facts = reader.facts();
}

/** Throws the refusal for a body the reader refused, or one that continues a kept conversation. */
function judge(request: StagedRequest, reason: string | undefined, model: ModelExchange, reader?: RequestJsonReader): void {
  if (reason !== undefined) throw refusal(request, reason);
  const continues = reader === undefined ? model.facts?.continues : reader.continues;
  if (continues !== null && continues !== undefined)
    throw refusal(request, 'it continues a conversation the vendor keeps (previous_response_id, conversation, cachedContent), whose input keyway does not see');
}

function refusal(request: StagedRequest, why: string): ProxyError {
  return new ProxyError('budget_unmeterable', `keyway cannot meter this model request (${why}), and a model budget applies`, {
    grant: request.grant?.id,
    hint: 'send one uncompressed JSON object (application/json, UTF-8) as the vendor documents it, with the whole conversation in the request (docs/spend.md)',
  });
}
