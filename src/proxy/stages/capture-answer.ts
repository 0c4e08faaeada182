import { mayBeTokenAnswer, readAnswer } from '../../capture/core/answer-body.ts';
import { judgeNamed, judgeOtherBody, judgeWatchedBody, type Refusal } from '../../capture/core/answer-judge.ts';
import { isRefusal, judgeOtherHead, judgeWatchedHead } from '../../capture/core/answer-head.ts';
import { CSRF_FIELDS, decodeReferences, htmlFields } from '../../capture/core/html-fields.ts';
import { swapAnswer, unswappedTokenFields } from '../../capture/core/swap.ts';
import { ProxyError } from '../../errors/index.ts';
import { filterJsonBody } from '../../mcp/tools-list.ts';
import { guards, hasBody, type ReadWhole, redactBody } from '../leak-guard/response-guard.ts';
import type { CaptureExchange } from './capture-exchange.ts';
import type { ResponseBodyStage, UpstreamAnswer } from './response.ts';

// Login capture on the answer (capture/): on a login host (a host of the grant's token
// endpoints) every answer is read whole, head, body and trailers, before any of it reaches the
// agent, and judged (capture/core/answer-judge.ts). At a watched endpoint a 2xx answer's
// tokens are swapped for placeholders and sealed in the store first; anything else there that
// looks like a credential refuses the answer (capture_unlisted). Anywhere else on the host, the
// head is judged the same way (capture/core/answer-head.ts: every header, cookie and
// challenge parameter), and in the body a token by its name is refused, an HTML page's fields
// included (a form_post page). What keyway cannot read (a type, a charset, an encoding, a body
// over max_body, JSON too deep or naming a member twice) is refused (capture_unreadable): never
// passed unread.

function refusal(found: Refusal, where: string, capture: CaptureExchange): ProxyError {
  const id = capture.grant.id;
  if (found.unreadable) {
    return new ProxyError('capture_unreadable', `${where} with an answer keyway cannot read whole for tokens: ${found.reason}`, {
      grant: id,
      hint: 'a login host is read whole before the agent gets anything; keyway reads JSON, forms, text, HTML and XML in UTF-8, unencoded, up to capture.max_body',
    });
  }
  return new ProxyError('capture_unlisted', `${where} with ${found.reason}`, {
    grant: id,
    hint: `list the token endpoint under grants.${id}.capture.endpoints, the token under capture.fields or capture.headers, or what is no credential under capture.pass`,
  });
}

/** Answers read as text and searched for token names, not parsed (XML, an HTML form_post page, plain text that is neither JSON nor a form). */
function searchedOnly(type: string): boolean {
  return type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml') || type === 'text/html';
}

/** A token field's name in text: the standard ones and their camelCase, and the grant's own. */
function tokenNamesIn(text: string, names: readonly string[]): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(?:access|refresh|id|session|subject|auth|bearer)[_-]?token\b/gi)) found.add(m[0]);
  for (const n of names) if (text.includes(n)) found.add(n);
  return [...found];
}

export const captureAnswer: ResponseBodyStage = {
  name: 'capture-answer',
  run(head, answer) {
    const capture = answer.request?.login;
    if (capture === undefined || !capture.captureHost) return undefined;
    const where = `${capture.where} answered ${answer.status}`;
    const settings = capture.grant.logins;
    const watched = capture.endpoint !== undefined;
    const capturing = watched && answer.status >= 200 && answer.status < 300;
    const names = new Set(settings.tokenFields.flatMap((f) => [f, f.split('.').pop()!]));
    const judgedHead = watched ? judgeWatchedHead(answer.headers, settings, capturing) : judgeOtherHead(answer.headers, settings, names);
    if (isRefusal(judgedHead)) throw refusal(judgedHead, where, capture);
    const capturedHeaders = judgedHead?.capturedHeaders ?? [];
    if (!hasBody(answer.status, answer.method, answer.headers)) {
      if (capturedHeaders.length > 0)
        throw refusal({ unreadable: false, reason: `a captured header (${capturedHeaders.join(', ')}) and no body` }, where, capture);
      return undefined;
    }
    const contentType = single(answer.headers['content-type']);
    const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
    const parsed = mayBeTokenAnswer(contentType);
    if (!parsed && !searchedOnly(type))
      throw refusal({ unreadable: true, reason: `it is ${type || contentType}, which keyway does not read for tokens` }, where, capture);
    const encoding = single(answer.headers['content-encoding'])?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity')
      throw refusal({ unreadable: true, reason: `it has Content-Encoding ${encoding} (keyway asked for identity)` }, where, capture);
    const { maxBody } = settings;
    const declared = Number(answer.headers['content-length']);
    const tooLarge = () =>
      refusal({ unreadable: true, reason: `its body is over grants.${capture.grant.id}.capture.max_body (${maxBody} bytes)` }, where, capture);
    if (Number.isFinite(declared) && declared > maxBody) throw tooLarge();
    delete head['content-encoding'];
    const plan: ReadWhole = {
      kind: 'read',
      limit: maxBody,
      tooLarge,
      rewrite: async (body, trailers) => {
        try {
          const judgedTrailers =
            trailers === undefined
              ? undefined
              : watched
                ? judgeWatchedHead(trailers, settings, false, 'trailer')
                : judgeOtherHead(trailers, settings, names, 'trailer');
          if (isRefusal(judgedTrailers)) throw refusal(judgedTrailers, where, capture);
          if (!parsed) return searched(body, type, watched, where, answer, names);
          return await read(body, contentType, type, watched ? { capturing, headers: capturedHeaders } : undefined, where, answer, head, names);
        } catch (err) {
          // A refresh the server answered but keyway refused: the token it sent is spent all the same.
          if (watched) await markExchanged(capture);
          throw err;
        }
      },
    };
    return plan;
  },
};

/**
 * An XML or HTML answer (or plain text that is neither JSON nor a form): refused if it names a
 * token (at a watched endpoint, whatever it says), its character references decoded first; an
 * HTML page's fields (a form_post page's hidden inputs: html-fields.ts) judged as a redirect's
 * parameters are, by name, a JWT among them read for its claims (a JARM `response`).
 */
function searched(body: Buffer, type: string, watched: boolean, where: string, answer: UpstreamAnswer, names: ReadonlySet<string>): Buffer {
  const capture = answer.request!.login!;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw refusal({ unreadable: true, reason: 'it is not valid UTF-8' }, where, capture);
  }
  const markup = type === 'text/html' || type.endsWith('+xml') || type.endsWith('/xml');
  const decoded = markup ? decodeReferences(text) : text;
  const found = tokenNamesIn(decoded === text ? text : `${text}\n${decoded}`, [...names]);
  if (watched || found.length > 0) {
    throw refusal(
      { unreadable: false, reason: `${type || 'text'}${found.length > 0 ? ` naming ${found.join(', ')}` : ''}, which keyway does not read for tokens` },
      where,
      capture,
    );
  }
  if (markup) {
    for (const field of htmlFields(text)) {
      if (CSRF_FIELDS.has(field.name.toLowerCase())) continue;
      const judged = judgeNamed(field.name, field.name, field.value, names, 0);
      if (judged !== undefined)
        throw refusal({ unreadable: judged.unreadable, reason: `a page whose field carries a token (${judged.reason})` }, where, capture);
    }
  }
  return leakGuarded(body, answer);
}

async function read(
  body: Buffer,
  contentType: string | undefined,
  type: string,
  watched: { capturing: boolean; headers: readonly string[] } | undefined,
  where: string,
  answer: UpstreamAnswer,
  head: Record<string, unknown>,
  names: ReadonlySet<string>,
): Promise<Buffer> {
  const capture = answer.request!.login!;
  const settings = capture.grant.logins;
  const readBody = body.length === 0 ? undefined : readAnswer(body, contentType);
  if (readBody?.format === 'unreadable') {
    // Plain text that is neither JSON nor a form is text: searched for token names, as HTML is.
    if ((type === 'text/plain' || type === '') && readBody.reason === 'it is neither JSON nor a form')
      return searched(body, type, watched !== undefined, where, answer, names);
    throw refusal({ unreadable: true, reason: readBody.reason }, where, capture);
  }
  if (watched === undefined) {
    const found = readBody === undefined ? undefined : judgeOtherBody(readBody, names);
    if (found !== undefined) throw refusal(found, where, capture);
    return mcpFiltered(leakGuarded(body, answer), answer);
  }
  if (readBody !== undefined) {
    const found = judgeWatchedBody(readBody, settings, watched.capturing);
    if (found !== undefined) throw refusal(found, where, capture);
  }
  if (!watched.capturing) return leakGuarded(body, answer);
  const headerValues = watched.headers.flatMap((name) => {
    const value = answer.headers[name];
    return (Array.isArray(value) ? value : value === undefined ? [] : [value]).map((v) => [name, v] as const);
  });
  const now = Date.now();
  const endpoint = capture.endpoint!;
  const swapped = swapAnswer(
    readBody,
    body.toString('utf8'),
    {
      grant: capture.grant.id,
      agent: capture.agent,
      endpoint: `${endpoint.host.text}${endpoint.path}`,
      fields: settings.fields,
      refreshing: capture.refreshing,
    },
    now,
    headerValues,
  );
  if (swapped.records.length === 0 && !swapped.sameRefreshToken) return leakGuarded(body, answer);
  // Read again, as the client will: every token field now holds a placeholder, or nothing goes.
  if (readBody !== undefined) {
    const after = readAnswer(swapped.body, contentType);
    const left = after.format === 'unreadable' ? ['(the rewritten answer)'] : unswappedTokenFields(after, settings.fields);
    if (left.length > 0) throw refusal({ unreadable: false, reason: `${left.join(', ')}, which keyway could not swap for a placeholder` }, where, capture);
  }
  for (const name of watched.headers) {
    const value = swapped.headers.get(name);
    if (value === undefined) throw refusal({ unreadable: false, reason: `a header ${name} keyway could not swap for a placeholder` }, where, capture);
    head[name] = value;
  }
  const refreshing = capture.refreshing;
  const exchanged =
    refreshing === undefined
      ? undefined
      : {
          key: refreshing.key,
          answer: {
            status: answer.status,
            content_type: contentType,
            body: swapped.body.toString('utf8'),
            rotated: swapped.captured.includes('refresh_token') && !swapped.sameRefreshToken,
          },
        };
  try {
    await capture.book.save(swapped.records, exchanged, now);
  } catch (err) {
    throw new ProxyError('internal_error', 'the captured tokens could not be saved in the store; the answer was withheld', {
      grant: capture.grant.id,
      cause: err,
    });
  }
  capture.release();
  capture.captured(swapped.captured);
  return leakGuarded(swapped.body, answer);
}

/** The refresh token a refused answer spent, marked exchanged with no answer: a refresh with it again is refused at keyway, not sent. */
async function markExchanged(capture: CaptureExchange): Promise<void> {
  const refreshing = capture.refreshing;
  if (refreshing === undefined) return;
  await capture.book.save([], { key: refreshing.key, answer: undefined }, Date.now()).catch(() => undefined);
}

/** A tools/list answer of an MCP endpoint on a capture host: cut to the tools the agent may call, as stage mcp-tools-list does elsewhere. */
function mcpFiltered(body: Buffer, answer: UpstreamAnswer): Buffer {
  const list = answer.request?.mcp?.list;
  return list !== undefined && answer.status === 200 ? filterJsonBody(body, list) : body;
}

/** The leak guard's whole-body redaction, when a real value went on the request (a refresh token). */
function leakGuarded(body: Buffer, answer: UpstreamAnswer): Buffer {
  return guards(answer.redact) ? redactBody(body, answer.redact, 'marker') : body;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
