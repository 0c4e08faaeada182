import { KeywayError } from '../errors/index.ts';
import { type Dispatcher, requestUrl } from '../net/undici.ts';

// How keyway finds where an MCP server's tokens come from (the MCP authorization spec, 2025-06-18 and
// 2026-07-28):
//   1. the server answers an unauthenticated request with 401 and `WWW-Authenticate: Bearer
//      resource_metadata="…"` (else its protected resource metadata is at the well-known path);
//   2. that metadata (RFC 9728) names the resource and its authorization server(s);
//   3. the authorization server's metadata (RFC 8414, or OpenID discovery) gives its endpoints, and
//      says whether it takes Client ID Metadata Documents (2026-07-28's way for a client of our own)
//      or has a registration endpoint (RFC 7591, 2025's way), and whether it sends `iss` in the
//      authorization response (RFC 9207, checked by the loopback callback);
//   4. the code flow is run with PKCE (S256, which the metadata must offer) and `resource` (RFC 8707).
// Every document is checked against what asked for it: a resource that is not the server's URL, or an
// issuer that is not the one named, is refused (a server could otherwise send tokens elsewhere).

/** What connecting an MCP server needs to know, read from its metadata. */
export interface McpAuthorization {
  /** The MCP endpoint, as given. */
  url: string;
  /** The resource identifier the tokens are for (the protected resource metadata's `resource`). */
  resource: string;
  issuer: string;
  authorizeUrl: string;
  tokenUrl: string;
  registrationUrl: string | undefined;
  revokeUrl: string | undefined;
  /** client_id_metadata_document_supported: a client_id may be the https URL of its metadata document. */
  clientMetadataDocuments: boolean;
  /** authorization_response_iss_parameter_supported (RFC 9207): its authorization responses carry `iss`. */
  issInResponse: boolean;
  /** scopes_supported of the resource (or, failing that, of the authorization server). */
  scopes: string[];
}

const TIMEOUT_MS = 10_000;
/** Metadata documents are small; a larger answer is not one. */
const MAX_DOCUMENT = 256 * 1024;

export async function discoverMcpAuthorization(url: string, dispatcher: Dispatcher): Promise<McpAuthorization> {
  const target = parseHttpUrl(url, 'the MCP server URL');
  const resourceMetadata = await findResourceMetadata(target, dispatcher);
  const resource = stringField(resourceMetadata.body, 'resource', resourceMetadata.url);
  if (!sameResource(resource, target)) {
    throw new KeywayError(
      'usage',
      `${resourceMetadata.url} names the resource ${resource}, not ${target.href}: refused (the tokens would be for another server)`,
    );
  }
  const servers = resourceMetadata.body['authorization_servers'];
  if (!Array.isArray(servers) || typeof servers[0] !== 'string') throw new KeywayError('usage', `${resourceMetadata.url} names no authorization_servers`);
  const issuer = servers[0];
  const server = await authorizationServerMetadata(issuer, dispatcher);
  const methods = server['code_challenge_methods_supported'];
  if (!Array.isArray(methods) || !methods.includes('S256')) {
    throw new KeywayError(
      'usage',
      `the authorization server ${issuer} does not offer PKCE with S256 (code_challenge_methods_supported): refused, as the MCP spec requires`,
    );
  }
  const scopes = stringList(resourceMetadata.body['scopes_supported']) ?? stringList(server['scopes_supported']) ?? [];
  return {
    url: target.href,
    resource,
    issuer,
    authorizeUrl: endpoint(server, 'authorization_endpoint', issuer, true)!,
    tokenUrl: endpoint(server, 'token_endpoint', issuer, true)!,
    registrationUrl: endpoint(server, 'registration_endpoint', issuer, false),
    revokeUrl: endpoint(server, 'revocation_endpoint', issuer, false),
    clientMetadataDocuments: server['client_id_metadata_document_supported'] === true,
    issInResponse: server['authorization_response_iss_parameter_supported'] === true,
    scopes,
  };
}

/** A client of our own at the authorization server (RFC 7591): public, with the loopback redirect. */
export async function registerClient(
  registrationUrl: string,
  redirectUri: string,
  dispatcher: Dispatcher,
): Promise<{ clientId: string; clientSecret: string | undefined }> {
  const answer = await requestUrl(registrationUrl, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      client_name: 'keyway',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch((err: Error) => {
    throw new KeywayError(
      'usage',
      `the registration endpoint ${origin(registrationUrl)} could not be reached (${(err as NodeJS.ErrnoException).code ?? err.name})`,
    );
  });
  const body = await readJson(answer, registrationUrl);
  if (answer.statusCode !== 201 && answer.statusCode !== 200) {
    const error = typeof body?.['error'] === 'string' ? `: ${body['error'].slice(0, 100)}` : '';
    throw new KeywayError(
      'usage',
      `the authorization server refused to register keyway as a client (${answer.statusCode}${error}); register one and give --client-id`,
    );
  }
  const clientId = body?.['client_id'];
  if (typeof clientId !== 'string' || clientId === '') throw new KeywayError('usage', `${origin(registrationUrl)} registered no client_id`);
  const secret = body?.['client_secret'];
  return { clientId, clientSecret: typeof secret === 'string' && secret !== '' ? secret : undefined };
}

/** The resource's metadata: where its 401 says, else the well-known paths (path-suffixed first). */
async function findResourceMetadata(target: URL, dispatcher: Dispatcher): Promise<{ url: string; body: Record<string, unknown> }> {
  const candidates: string[] = [];
  const probe = await requestUrl(target, {
    method: 'GET',
    dispatcher,
    headers: { accept: 'application/json, text/event-stream' },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch((err: Error) => {
    throw new KeywayError('usage', `${target.origin} could not be reached (${(err as NodeJS.ErrnoException).code ?? err.name})`);
  });
  await probe.body.dump().catch(() => undefined);
  const challenge = String(probe.headers['www-authenticate'] ?? '');
  const named = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
  if (named) candidates.push(new URL(named, target).href);
  const path = target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '');
  if (path) candidates.push(`${target.origin}/.well-known/oauth-protected-resource${path}`);
  candidates.push(`${target.origin}/.well-known/oauth-protected-resource`);
  for (const url of candidates) {
    parseHttpUrl(url, 'the resource metadata URL');
    const body = await getJson(url, dispatcher);
    if (body) return { url, body };
  }
  throw new KeywayError(
    'usage',
    `${target.href} publishes no OAuth protected resource metadata (${probe.statusCode === 401 ? 'its 401 named none, and ' : ''}none at ${candidates.at(-1)}): is it an MCP server that uses OAuth? A static token works with keyway grants add`,
  );
}

/** RFC 8414 metadata, else OpenID discovery, at the places each defines for an issuer with or without a path. */
async function authorizationServerMetadata(issuer: string, dispatcher: Dispatcher): Promise<Record<string, unknown>> {
  const url = parseHttpUrl(issuer, 'the authorization server');
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const candidates = [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    ...(path ? [`${url.origin}${path}/.well-known/openid-configuration`] : []),
  ];
  for (const candidate of candidates) {
    const body = await getJson(candidate, dispatcher);
    if (!body) continue;
    if (body['issuer'] !== issuer)
      throw new KeywayError('usage', `${candidate} names the issuer ${String(body['issuer']).slice(0, 200)}, not ${issuer}: refused`);
    return body;
  }
  throw new KeywayError('usage', `the authorization server ${issuer} publishes no metadata (tried ${candidates.join(', ')})`);
}

/** A JSON object from a 200, or undefined for a 404 (or any other miss); throws when unreachable. */
async function getJson(url: string, dispatcher: Dispatcher): Promise<Record<string, unknown> | undefined> {
  const answer = await requestUrl(url, { method: 'GET', dispatcher, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) }).catch(
    (err: Error) => {
      throw new KeywayError('usage', `${origin(url)} could not be reached (${(err as NodeJS.ErrnoException).code ?? err.name})`);
    },
  );
  if (answer.statusCode !== 200) {
    await answer.body.dump().catch(() => undefined);
    return undefined;
  }
  return readJson(answer, url);
}

async function readJson(answer: Awaited<ReturnType<typeof requestUrl>>, url: string): Promise<Record<string, unknown> | undefined> {
  const length = Number(answer.headers['content-length']);
  if (Number.isFinite(length) && length > MAX_DOCUMENT) {
    await answer.body.dump().catch(() => undefined);
    throw new KeywayError('usage', `${url} answered with a document over ${MAX_DOCUMENT} bytes`);
  }
  let text = '';
  for await (const chunk of answer.body) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > MAX_DOCUMENT) throw new KeywayError('usage', `${url} answered with a document over ${MAX_DOCUMENT} bytes`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** An endpoint from the metadata: an https URL (http only on loopback), as every URL keyway sends a client secret or code to. */
function endpoint(server: Record<string, unknown>, name: string, issuer: string, required: boolean): string | undefined {
  const value = server[name];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') throw new KeywayError('usage', `the authorization server ${issuer} names no ${name}`);
  return parseHttpUrl(value, `${issuer}'s ${name}`).href;
}

/** https, or http to a loopback address: what keyway sends codes and tokens to. */
function parseHttpUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KeywayError('usage', `${what}: "${text.slice(0, 200)}" is not a URL`);
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new KeywayError('usage', `${what}: expected an https:// URL (http:// only on loopback), got ${url.origin}`);
  return url;
}

/** The metadata's resource is the server's URL (RFC 9728 3.3), compared without a trailing slash or fragment. */
function sameResource(resource: string, target: URL): boolean {
  const norm = (u: string) => {
    try {
      const url = new URL(u);
      url.hash = '';
      return url.href.replace(/\/$/, '');
    } catch {
      return undefined;
    }
  };
  const a = norm(resource);
  return a !== undefined && (a === norm(target.href) || a === norm(target.origin));
}

function stringField(body: Record<string, unknown>, name: string, url: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') throw new KeywayError('usage', `${url} has no ${name}`);
  return value;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') && value.length > 0 ? (value as string[]) : undefined;
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the endpoint';
  }
}
