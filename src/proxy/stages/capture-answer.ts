import { mayBeTokenAnswer, readAnswer } from '../../credentials/capture/answer-body.ts';
import { swapAnswer, tokenFieldsIn, unswappedTokenFields } from '../../credentials/capture/swap.ts';
import { TOKEN_FIELDS } from '../../credentials/types/fields.ts';
import { ProxyError } from '../../errors/index.ts';
import { filterJsonBody } from '../../mcp/tools-list.ts';
import { redactAll } from '../leak-guard/index.ts';
import { hasBody, type ReadWhole } from '../leak-guard/response-guard.ts';
import type { CaptureExchange } from './capture.ts';
import type { ResponseBodyStage, UpstreamAnswer } from './response.ts';

// Login capture on the answer (credentials/capture/): on a capture host, every answer that could be
// a token answer (JSON, a form, plain text, XML, HTML, no type) is read whole. At a watched endpoint
// a 2xx answer's tokens are swapped for placeholders and sealed in the store before the agent gets
// it; anywhere else on the host, an answer with a token field is refused (capture_unlisted), so a
// login endpoint nobody listed never hands the agent a real token. What cannot be read is refused
// too, and so is a redirect that carries a token (an implicit flow's Location: …#access_token=).

function unlisted(message: string, capture: CaptureExchange): ProxyError {
  return new ProxyError('capture_unlisted', message, {
    grant: capture.grant.id,
    hint: `list the token endpoint under grants.${capture.grant.id}.capture.endpoints (and its fields under capture.fields)`,
  });
}

/** Answers whose text is searched for token field names, not parsed: a token may sit in them (XML, a form_post page). */
function searchedOnly(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml') || type === 'text/html';
}

export const captureAnswer: ResponseBodyStage = {
  name: 'capture-answer',
  run(head, answer) {
    const capture = answer.login;
    if (capture === undefined || !capture.captureHost) return undefined;
    const where = `${capture.where} answered ${answer.status}`;
    const settings = capture.grant.logins;
    const names = settings.tokenFields.map((f) => f.split('.').pop()!);
    const location = single(answer.headers['location']);
    if (location !== undefined && names.some((n) => location.includes(`${n}=`)))
      throw unlisted(`${where} with a redirect that carries a token (Location names ${names.filter((n) => location.includes(`${n}=`)).join(', ')})`, capture);
    if (!hasBody(answer.status, answer.method, answer.headers)) return undefined;
    const contentType = single(answer.headers['content-type']);
    const watched = capture.endpoint !== undefined && answer.status >= 200 && answer.status < 300;
    const type = contentType?.split(';')[0]?.trim().toLowerCase();
    if (type === 'application/jwt') throw unlisted(`${where} with application/jwt, a token keyway cannot capture`, capture);
    const parsed = mayBeTokenAnswer(contentType);
    if (!parsed && !searchedOnly(contentType)) {
      if (watched) throw unlisted(`${where} with ${contentType}, which is no token answer keyway reads`, capture);
      return undefined;
    }
    const encoding = single(answer.headers['content-encoding'])?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity')
      throw unlisted(`${where} with Content-Encoding ${encoding} (asked for identity), which keyway does not read for tokens`, capture);
    const { maxBody } = settings;
    const declared = Number(answer.headers['content-length']);
    const tooLarge = () => unlisted(`${where} with a body over grants.${capture.grant.id}.capture.max_body (${maxBody} bytes)`, capture);
    if (Number.isFinite(declared) && declared > maxBody) throw tooLarge();
    delete head['content-encoding'];
    const plan: ReadWhole = {
      kind: 'read',
      limit: maxBody,
      tooLarge,
      rewrite: (body) => (parsed ? rewrite(body, contentType, watched, where, answer) : searched(body, contentType, watched, where, answer)),
    };
    return plan;
  },
};

/** An XML or HTML answer: refused if it names a token field (or at a watched endpoint, whatever it says). */
async function searched(body: Buffer, contentType: string | undefined, watched: boolean, where: string, answer: UpstreamAnswer): Promise<Buffer> {
  const capture = answer.login!;
  const names = capture.grant.logins.tokenFields.map((f) => f.split('.').pop()!).filter((n) => body.includes(n));
  if (watched || names.length > 0) {
    await markExchanged(capture);
    throw unlisted(`${where} with ${contentType}${names.length > 0 ? ` naming ${names.join(', ')}` : ''}, which keyway does not read for tokens`, capture);
  }
  return leakGuarded(body, answer);
}

async function rewrite(body: Buffer, contentType: string | undefined, watched: boolean, where: string, answer: UpstreamAnswer): Promise<Buffer> {
  const capture = answer.login!;
  const settings = capture.grant.logins;
  try {
    const read = readAnswer(body, contentType);
    if (read.format === 'unreadable') {
      // At a watched endpoint an answer that cannot be read is refused; elsewhere only one that names a token field.
      const names = settings.tokenFields.filter((f) => body.includes(f.split('.').pop()!));
      if (watched || names.length > 0)
        throw unlisted(`${where} with a body keyway cannot read (${read.reason})${names.length > 0 ? `, naming ${names.join(', ')}` : ''}`, capture);
      return mcpFiltered(leakGuarded(body, answer), answer);
    }
    const tokens = tokenFieldsIn(read, settings.tokenFields);
    if (!watched) {
      if (tokens.length > 0) throw unlisted(`${where} with ${tokens.join(', ')} on a path no capture endpoint watches`, capture);
      return mcpFiltered(leakGuarded(body, answer), answer);
    }
    // A standard field the grant's fields leave out, at the top of the answer, is the user's choice
    // (an ID token a client verifies itself): it goes to the agent as it came. Any other token field
    // the grant does not capture (a nested one nobody named) is refused.
    const passes = (f: string) => (TOKEN_FIELDS as readonly string[]).includes(f) && !settings.fields.includes(f);
    const uncaptured = tokens.filter((f) => !settings.fields.includes(f) && !passes(f));
    if (uncaptured.length > 0) throw unlisted(`${where} with ${uncaptured.join(', ')}, which grant "${capture.grant.id}" does not capture`, capture);
    if (tokens.every(passes)) return mcpFiltered(leakGuarded(body, answer), answer);
    const now = Date.now();
    const endpoint = capture.endpoint!;
    const swapped = swapAnswer(
      read,
      body.toString('utf8'),
      {
        grant: capture.grant.id,
        agent: capture.agent,
        endpoint: `${endpoint.host.text}${endpoint.path}`,
        fields: settings.fields,
        refreshing: capture.refreshing,
      },
      now,
    );
    // Read again, as the client will: every token field now holds a placeholder, or nothing goes.
    const after = readAnswer(swapped.body, contentType);
    const left = after.format === 'unreadable' ? ['(the rewritten answer)'] : unswappedTokenFields(after, settings.tokenFields).filter((f) => !passes(f));
    if (left.length > 0) throw unlisted(`${where} with ${left.join(', ')}, which keyway could not swap for a placeholder`, capture);
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
  } catch (err) {
    // A refresh the server answered but keyway refused: the token it sent is spent all the same.
    if (watched) await markExchanged(capture);
    throw err;
  }
}

/** The refresh token a refused answer spent, marked exchanged with no answer: a refresh with it again is refused at keyway, not sent. */
async function markExchanged(capture: CaptureExchange): Promise<void> {
  const refreshing = capture.refreshing;
  if (refreshing === undefined) return;
  await capture.book.save([], { key: refreshing.key, answer: undefined }, Date.now()).catch(() => undefined);
}

/** A tools/list answer of an MCP endpoint on a capture host: cut to the tools the agent may call, as stage mcp-tools-list does elsewhere. */
function mcpFiltered(body: Buffer, answer: UpstreamAnswer): Buffer {
  return answer.mcpList !== undefined && answer.status === 200 ? filterJsonBody(body, answer.mcpList) : body;
}

/** The leak guard's whole-body redaction, when a real value went on the request (a refresh token). */
function leakGuarded(body: Buffer, answer: UpstreamAnswer): Buffer {
  const redact = answer.redact;
  if (redact === undefined || redact.needles.length === 0) return body;
  const { output, count } = redactAll(body, redact.needles, 'marker');
  if (count > 0) redact.onRedacted(count);
  return output;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
