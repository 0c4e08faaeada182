import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { parse, type Args } from '../args.ts';
import { agentKeyFor } from '../client-env.ts';
import { identityTokenCredentials } from '../identity-token.ts';
import type { Command } from '../command.ts';
import { configFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { excludedByNoProxy, LOOPBACK_NO_PROXY } from '../no-proxy.ts';
import { fetchClient, openFetchProxy, type ConnectRefusal } from '../fetch-proxy.ts';
import { noAgentLine } from '../agent-hint.ts';

// `keyway fetch`: one request through keyway, for agents and scripts that cannot set a proxy. The
// request goes through the proxy exactly as any client's would (CONNECT, interception, rules,
// audit, leak guard), so this command never sees the credential: the proxy puts it on the request
// and the leak guard takes it out of the answer before it gets here.

const USAGE = `keyway fetch [--agent ID | --identity-token FILE] [--grant G] [-X METHOD] [-H 'Name: value']… [-d DATA | --data-file F] URL [--json]

One request through keyway, as an agent's client would send it; prints the response body.
Uses the proxy running for this home (data/proxy.json); when none runs, starts one in this process
on a free loopback port for the one request, which no other client may use, and stops it after
(the request is audited either way).

  --agent ID       send as this agent (or set KEYWAY_AGENT); its key comes from KEYWAY_AGENT_KEY,
                   or from the config's reference for a config agent
  --grant G        choose the grant when several cover the host (sends X-Keyway-Grant: G)
  --purpose TEXT   why this request is made, for the audit line (sends X-Keyway-Purpose; keyway
                   records it and removes it before the request goes upstream)
  -X, --request M  the method (default GET, or POST with a body)
  -H, --header H   a request header, 'Name: value'; repeat for more
  -d, --data D     the request body (as given; Content-Type defaults to
                   application/x-www-form-urlencoded, as curl does)
  --data-file F    the request body from a file ('-' for standard input)
  --json           print {"status","headers","body"} instead of the body

Redirects are not followed. Exits 0 when the upstream answered (whatever its status; see --json),
1 with "keyway fetch: CODE: message (hint)" when keyway refused the request, 1 when it could not be
sent. keyway's CA is trusted explicitly for this request (with the system CAs for hosts keyway
tunnels blind); the credential keyway injects is never printed.`;

const OPTIONS = {
  agent: { type: 'string' },
  'identity-token': { type: 'string' },
  grant: { type: 'string' },
  purpose: { type: 'string' },
  request: { type: 'string', short: 'X' },
  header: { type: 'string', short: 'H', multiple: true },
  data: { type: 'string', short: 'd' },
  'data-file': { type: 'string' },
} as const;

export const fetchCommand: Command = {
  name: 'fetch',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, OPTIONS, 1);
    const url = targetUrl(args);
    const body = requestBody(args);
    const method = (args.string('request') ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
    if (!TOKEN.test(method)) throw usageError(`-X: "${method}" is not an HTTP method`);
    const headers = requestHeaders(args, body !== undefined);

    const config = configFor(args, io);
    if (excludedByNoProxy(url.hostname, LOOPBACK_NO_PROXY)) {
      io.err(
        `keyway fetch: note: ${url.hostname} is in the NO_PROXY that keyway env and keyway run set (${LOOPBACK_NO_PROXY}): this request goes through keyway, but a client with those variables goes straight there, with nothing injected or audited; give the API a name that maps to loopback (proxy.hosts; docs/local-api.md, "Try it on a local API")`,
      );
    }
    const agentId = args.string('agent') ?? io.env['KEYWAY_AGENT'];
    const agent =
      identityTokenCredentials(args, config) ??
      (agentId === undefined || agentId === '' ? undefined : { id: agentId, key: agentKeyFor(config, agentId, io.env) });
    const proxy = await openFetchProxy(config, args.string('config'), agent, io.env);
    const client = fetchClient(proxy, url);
    try {
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(url, { dispatcher: client.dispatcher, method, headers, body });
      } catch (err) {
        const refused = client.refusal();
        if (refused) return reportConnectRefusal(refused, args.json, io, agent === undefined);
        io.err(`keyway fetch: the request could not be sent: ${failureReason(err)}`);
        return 1;
      }
      const text = await res.body.text();
      const refusal = res.headers['x-keyway-error'];
      if (args.json) printJson(io, { status: res.statusCode, headers: res.headers, body: text });
      else if (refusal === undefined) io.out(text.endsWith('\n') ? text.slice(0, -1) : text);
      if (refusal === undefined) return 0;
      io.err(`keyway fetch: ${refusalLine(String(refusal), text)}`);
      return 1;
    } finally {
      await client.dispatcher.close().catch(() => undefined);
      await proxy.close();
    }
  },
};

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** keyway refused the CONNECT itself (a host it never intercepts, proxy credentials): say why. */
function reportConnectRefusal(refused: ConnectRefusal, json: boolean, io: CommandIO, anonymous: boolean): number {
  if (json)
    printJson(io, {
      status: refused.status,
      headers: { 'x-keyway-error': refused.code ?? null, 'x-keyway-reason': refused.reason ?? null },
      body: refused.body,
    });
  const line = refused.code === undefined ? `the proxy refused the connection (${refused.status})` : refusalLine(refused.code, refused.body, refused.reason);
  io.err(`keyway fetch: ${line}`);
  // The proxy's hint speaks of proxy URLs; this command takes the agent another way.
  if (refused.code === 'proxy_auth_required' && anonymous) io.err(`keyway fetch: ${noAgentLine('fetch', { envName: true })}`);
  return 1;
}

function targetUrl(args: Args): URL {
  const [text, ...extra] = args.positionals;
  if (text === undefined) throw usageError('expected a URL (see keyway fetch --help)');
  if (extra.length > 0) throw usageError(`expected one URL, got also "${extra[0]}"`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError('expected an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw usageError(`unsupported scheme ${url.protocol}`);
  return url;
}

function requestBody(args: Args): string | Buffer | undefined {
  const data = args.string('data');
  const file = args.string('data-file');
  if (data !== undefined && file !== undefined) throw usageError('give -d or --data-file, not both');
  if (file === undefined) return data;
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw usageError(`--data-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function requestHeaders(args: Args, hasBody: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of args.each('header')) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!TOKEN.test(name)) throw usageError(`-H: expected 'Name: value', got "${line.slice(0, 40)}"`);
    headers[name.toLowerCase()] = line.slice(colon + 1).trim();
  }
  const grant = args.string('grant');
  if (grant !== undefined) headers['x-keyway-grant'] = grant;
  const purpose = args.string('purpose');
  // Sent as UTF-8 bytes (a header value is bytes; keyway reads them back as UTF-8).
  if (purpose !== undefined) headers['x-keyway-purpose'] = Buffer.from(purpose, 'utf8').toString('latin1');
  if (hasBody && headers['content-type'] === undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  return headers;
}

/** "CODE: message (hint: …)" from keyway's JSON error body; the code alone if the body is not it. */
export function refusalLine(code: string, body: string, reason?: string): string {
  let error: { message?: unknown; hint?: unknown } = {};
  try {
    error = (JSON.parse(body) as { error?: typeof error }).error ?? {};
  } catch {
    // not keyway's JSON (cut short): the reason header still says why
  }
  const message = typeof error.message === 'string' ? error.message : reason;
  const hint = typeof error.hint === 'string' ? ` (hint: ${error.hint})` : '';
  return `${code}${message === undefined ? '' : `: ${message}`}${hint}`;
}

/** A client-side failure in a few words: an error code, never a foreign message (it may quote the URL). */
function failureReason(err: unknown): string {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
  }
  return err instanceof Error ? err.name : 'unknown error';
}
