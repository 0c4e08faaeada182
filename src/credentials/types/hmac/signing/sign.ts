import { createHmac } from 'node:crypto';
import { utf8Reading } from '../../../../net/media-type.ts';
import { HmacSignError } from './errors.ts';
import { decodeKey, type HmacMaterial } from './material.ts';
import { editQuery, type QueryPair, queryNames } from './query.ts';
import { type HmacScheme, placementText } from './scheme.ts';
import type { Placement } from '../fields/sign-schema.ts';
import { formatTimestamp, type SigningSources } from './sources.ts';

// Signs one request: a pure function from the request as the client sent it to the changes that
// make it signed. It never mutates its inputs, and the key appears in nothing it returns: only the
// signature, the key id and the passphrase do, each where the scheme puts it.

export interface HmacRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** The raw query string without `?` ('' when none), exactly as the client sent it. */
  query: string;
  /** Lowercase names, as node:http gives them. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The whole body when the scheme needs it (scheme.needsBody); undefined when there is none. */
  body: Buffer | undefined;
  /** The Host the request goes to (name, and :port when not the default). */
  host: string;
}

export interface HmacSigned {
  /** Lowercase names; each replaces whatever the client sent under that name. */
  setHeaders: Record<string, string>;
  /** Lowercase names of client headers to drop (its placeholder signature headers among them). */
  removeHeaders: string[];
  /** Query parameters keyway set, in the order they appear in `target`. */
  setQuery: QueryPair[];
  /** Names of client query parameters keyway dropped or replaced. */
  removeQuery: string[];
  /** Path and query to send, exactly: the signature covers these bytes, so send them unchanged. */
  target: string;
  /** The body to send when keyway rewrote it (e.g. Kraken's nonce); undefined: send the client's. */
  body: Buffer | undefined;
}

const FORM = 'application/x-www-form-urlencoded';

export function signHmacRequest(request: HmacRequest, material: HmacMaterial, scheme: HmacScheme, sources: SigningSources): HmacSigned {
  const key = decodeKey(material.key, scheme.keyEncoding);
  if (scheme.keyId && !material.keyId) {
    throw new HmacSignError(
      'grant_no_secret',
      `the grant's secret has no keyId, which ${scheme.describe()} sends in ${placementText(scheme.keyId)}; set it with keyway secrets set`,
    );
  }
  if (scheme.passphrase && !material.passphrase) {
    throw new HmacSignError(
      'grant_no_secret',
      `the grant's secret has no passphrase, which ${scheme.describe()} sends in ${placementText(scheme.passphrase)}; set it with keyway secrets set`,
    );
  }
  const nowMs = sources.now();
  const timestamp = scheme.timestamp && formatTimestamp(nowMs, scheme.timestamp.format);
  const nonce = scheme.nonce && sources.nonce(scheme.nonce.format, nowMs);

  const placed: Array<[Placement, string]> = [];
  if (scheme.timestamp?.place && timestamp !== undefined) placed.push([scheme.timestamp.place, timestamp]);
  if (scheme.nonce?.place && nonce !== undefined) placed.push([scheme.nonce.place, nonce]);
  if (scheme.keyId && material.keyId) placed.push([scheme.keyId, material.keyId]);
  if (scheme.passphrase && material.passphrase) placed.push([scheme.passphrase, material.passphrase]);
  const into = (where: Placement['in']) => placed.filter(([place]) => place.in === where).map(([place, value]): QueryPair => [place.name, value]);

  const setHeaders: Record<string, string> = Object.fromEntries(into('header'));
  const output = scheme.output.place;
  const querySet = into('query');
  let query = editQuery(request.query, querySet, output.in === 'query' ? [output.name] : []);

  const body = rewriteForm(request, scheme, into('form'));
  const sentBody = body ?? request.body ?? Buffer.alloc(0);
  if (body) {
    setHeaders['content-length'] = String(body.length);
    if (request.headers['content-type'] === undefined) setHeaders['content-type'] = FORM;
  }

  const signature = createHmac(scheme.algorithm, key)
    .update(
      scheme.message({
        method: request.method.toUpperCase(),
        path: request.path,
        query,
        body: sentBody,
        host: request.host,
        headers: headersForMessage(request.headers, setHeaders, output),
        timestamp,
        nonce,
        keyId: material.keyId,
      }),
    )
    .digest(scheme.output.encoding);
  const setQuery = [...querySet];
  if (output.in === 'header') setHeaders[output.name] = signature;
  else {
    query = editQuery(query, [[output.name, signature]]);
    setQuery.push([output.name, signature]);
  }

  const sent = new Set(Object.keys(request.headers).filter((name) => request.headers[name] !== undefined));
  const removeHeaders = Object.keys(setHeaders).filter((name) => sent.has(name));
  if (body && sent.has('transfer-encoding')) removeHeaders.push('transfer-encoding');
  const owned = new Set(setQuery.map(([name]) => name));
  const removeQuery = [...new Set(queryNames(request.query).filter((name) => owned.has(name)))];
  return { setHeaders, removeHeaders, setQuery, removeQuery, target: query === '' ? request.path : `${request.path}?${query}`, body };
}

/**
 * The form body with keyway's fields set (and the scheme's stripped ones removed), or undefined
 * when the body stays as sent. Only form bodies can carry a field: any other body, when the scheme
 * needs to put a field in it, is refused rather than signed in a way the server would not accept.
 */
function rewriteForm(request: HmacRequest, scheme: HmacScheme, set: readonly QueryPair[]): Buffer | undefined {
  const strip = (scheme.stripFormFields ?? []).filter((name) => !set.some(([setName]) => setName === name));
  if (set.length === 0 && strip.length === 0) return undefined;
  const method = request.method.toUpperCase();
  if (set.length > 0 && (method === 'GET' || method === 'HEAD')) {
    throw new HmacSignError(
      'signature_unsupported',
      `${scheme.describe()} puts ${set.map(([name]) => name).join(', ')} in a form body; a ${method} request has no body`,
    );
  }
  const type = headerText(request.headers['content-type']);
  const isForm = type === undefined ? (request.body?.length ?? 0) === 0 : type.split(';')[0]?.trim().toLowerCase() === FORM;
  if (!isForm) {
    if (set.length === 0) return undefined;
    throw new HmacSignError(
      'signature_unsupported',
      `${scheme.describe()} puts ${set.map(([name]) => name).join(', ')} in a form body; this request's body is ${type}, not ${FORM}`,
    );
  }
  // A form in another charset (UTF-7 hides `nonce` as `no+AG4-ce`) or compressed is not edited as if
  // keyway read it: the server would find fields keyway did not see.
  const reading = type === undefined ? undefined : utf8Reading(type);
  if (reading?.ok === false) {
    throw new HmacSignError('signature_unsupported', `${scheme.describe()} edits the form body, and keyway reads forms in UTF-8 only: ${reading.reason}`);
  }
  if (headerText(request.headers['content-encoding']) !== undefined) {
    throw new HmacSignError('signature_unsupported', `${scheme.describe()} edits the form body, and this one has a Content-Encoding`);
  }
  // latin1 maps every byte to one character and back, so bytes keyway does not touch stay as sent.
  const text = (request.body ?? Buffer.alloc(0)).toString('latin1');
  if (set.length === 0 && !queryNames(text).some((name) => strip.includes(name))) return undefined;
  return Buffer.from(editQuery(text, set, strip), 'latin1');
}

function headerText(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.join(', ');
}

/** The headers as they will be sent, for {header:NAME}; the client's placeholder signature is not one of them. */
function headersForMessage(client: HmacRequest['headers'], set: Readonly<Record<string, string>>, output: Placement): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(client)) {
    const text = headerText(value);
    if (text !== undefined) headers[name] = text;
  }
  Object.assign(headers, set);
  if (output.in === 'header') delete headers[output.name];
  return headers;
}
