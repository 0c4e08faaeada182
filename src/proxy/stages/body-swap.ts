import { type BodySwapOutcome, swapBody, swapFormatOf } from '../../credentials/body-swap/index.ts';
import { bodySecret } from '../../credentials/injectors/index.ts';
import { utf8Reading } from '../../net/media-type.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { RequestBodyStage } from './body.ts';
import type { StagedRequest } from './request.ts';

/**
 * A grant with inject: {body: true}: its own placeholder (keyway-placeholder-<id>) in the request
 * body becomes its secret, in JSON string values, form values and text/* bodies (credentials/body-swap).
 * Only on requests that grant serves (so only on hosts it covers, never on a tunnel or an ungranted
 * host), and only that grant's placeholder: another grant's stays as written. The body is held whole,
 * up to proxy.max_body_swap and within the agent's memory for held bodies, and sent with its new
 * Content-Length; past either it streams on as it came, and the audit line says why (body_swap).
 */
export const bodySwap: RequestBodyStage = {
  name: 'body-swap',
  run(request, body) {
    const placeholder = request.grant?.bodyPlaceholder;
    if (placeholder === undefined || request.issued === undefined || body.kind === 'none') return undefined;
    const secret = bodySecret(request.issued.credential);
    if (secret === undefined) return undefined;
    const { headers } = request.req;
    const format = swapFormatOf(headers['content-type']);
    if (format === undefined) return record(request, 'other_type');
    // A grant that names its fields swaps in JSON and forms only: a text body has no fields.
    if (format === 'text' && request.grant?.bodyFields !== undefined) return record(request, 'other_type');
    // A compressed body would have to be inflated, swapped and compressed again: not done; said so.
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return record(request, 'not_parsed');
    // A body in another charset (UTF-7, UTF-16) is not read as UTF-8: the server would find the secret
    // where keyway saw no field, or decode its bytes into text an echo hands back in another form.
    if (!utf8Reading(headers['content-type']).ok) return record(request, 'not_parsed');
    if (body.kind === 'kept') return swapKept(request, body.body, format, placeholder, secret);
    if (request.holder === undefined) return record(request, 'no_memory');
    const limit = request.conn.decisions.config.proxy.max_body_swap;
    return readForReplay(request.req, request.holder, body.stream, limit).then((read) => {
      if (read.kind === 'kept') return swapKept(request, read.body, format, placeholder, secret);
      record(request, read.kind === 'streamed' && read.why === 'budget' ? 'no_memory' : 'too_large');
      return read;
    });
  },
};

function swapKept(request: StagedRequest, bytes: Buffer, format: ReturnType<typeof swapFormatOf> & string, placeholder: string, secret: string): RequestBody {
  const result = swapBody(format, bytes, placeholder, secret, request.grant?.bodyFields);
  record(request, result.outcome);
  const outgoing = request.outgoing!;
  // Held whole, it goes on with its length, whether the client sent one or chunks.
  outgoing.headers['content-length'] = String(result.bytes.length);
  if (result.outcome === 'swapped') request.bodySwapped = true;
  return { kind: 'kept', body: result.bytes };
}

function record(request: StagedRequest, outcome: BodySwapOutcome): undefined {
  request.draft.event.body_swap = outcome;
  return undefined;
}
