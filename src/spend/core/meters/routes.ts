import type { ModelApi } from '../usage.ts';
import { type HostDefault, hostDefault } from './model-hosts.ts';

// Which requests are model traffic, and in which wire format their answers come (issue 63). The
// proxy asks this for every request on a grant; a metered route gets an answer meter (index.ts),
// a free one costs nothing, and an `unknown` one is a call on a model API that keyway cannot meter:
// the proxy refuses it while a budget applies. So this is a guard: it lists what it understands and
// everything else on a model API is `unknown`, never free.
//
// Where the rules apply:
// - With the grant's `model_api` hint (a gateway, Azure OpenAI, a self-hosted OpenAI-compatible
//   server): on every path of the grant's hosts, matched by the path's tail (`…/chat/completions`),
//   so any prefix a gateway adds works. `none` says the grant carries no model traffic.
// - Without one, on the vendors' own hosts and their regional and alias names (model-hosts.ts):
//   inside the API's own path spaces as above; outside them (the website, a client's telemetry,
//   gRPC's /package.Service/Method paths) a read is free, a POST on the host's list of known
//   non-model calls is free (Claude Code posts its event logs to api.anthropic.com/api/…), and
//   anything else is `unknown`. Default deny: on a model host nothing is "not model traffic".
//
// A path keyway would read differently from the server is `unknown` when it is not a GET: a
// percent-encoded byte (`/v1/%6Dessages` may be decoded to /v1/messages upstream), a `.` or `..`
// segment, an empty segment, a backslash, a trailing slash. Clients never send these; refusing them
// under a budget costs nobody anything, and reading them as free would be a way around it. A
// route's tail matches case-sensitively, the API's space case-insensitively: `/V1/MESSAGES` is
// `unknown`, not outside the API (`/V1/messages` is Messages, read as such if a server takes it).
//
// Reads (GET, HEAD, OPTIONS) are free: no vendor runs a model on one. Every model call is a POST;
// another method is `unknown`. A WebSocket upgrade is a GET: the proxy asks socketRoute for it.

/** The grant's hint: a wire format, `none` (no model traffic), or undefined (the defaults by host). */
export type ModelApiHint = ModelApi | 'none' | undefined;

/** The wire format of a metered route's answer (each has a reader in this folder). */
export type MeterRoute =
  | 'anthropic-messages'
  | 'openai-chat'
  | 'openai-responses'
  | 'openai-completions'
  | 'openai-embeddings'
  | 'gemini-generate'
  | 'gemini-code-assist';

export interface MeterPlan {
  readonly api: ModelApi;
  readonly route: MeterRoute;
  /** The model the path names (a Gemini or Vertex model, an Azure deployment); null when the path names none. */
  readonly requestModel: string | null;
}

export type ModelRoute = { readonly kind: 'metered'; readonly plan: MeterPlan } | { readonly kind: 'free' } | { readonly kind: 'unknown' };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The characters a path keyway matches may hold: RFC 3986 pchar and `/`, without `%`. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/** An empty, `.` or `..` segment. */
const ODD_SEGMENT = /\/(?:\.\.?)?(?:\/|$)/;

const FREE: ModelRoute = { kind: 'free' };
const UNKNOWN: ModelRoute = { kind: 'unknown' };

const metered = (api: ModelApi, route: MeterRoute, requestModel: string | null = null): ModelRoute => ({
  kind: 'metered',
  plan: { api, route, requestModel },
});

/**
 * What a request on a grant is, as model traffic: `undefined` when it is none (the grant says
 * `none`, or the host is no model API's and no hint was given). `path` may carry the query; it is
 * cut off here.
 */
export function modelRoute(api: ModelApiHint, host: string, method: string, path: string): ModelRoute | undefined {
  const where = placeOf(api, host);
  if (where === undefined) return undefined;
  const bare = withoutQuery(path);
  const verb = method.toUpperCase();
  if (!plainPath(bare)) return SAFE_METHODS.has(verb) ? FREE : UNKNOWN;
  // No vendor runs a model on a read: listings, a batch's results, a file's content.
  if (SAFE_METHODS.has(verb)) return FREE;
  if (where.spaces !== undefined && !inSpace(bare, where.spaces)) return verb === 'POST' && where.free?.has(bare) === true ? FREE : UNKNOWN;
  // Every model call is a POST; a DELETE or PUT is nothing keyway reads.
  if (verb !== 'POST') return UNKNOWN;
  if (where.vertex === true || where.api === 'anthropic') {
    const claude = vertexClaude(bare);
    if (claude !== undefined) return claude;
  }
  if (where.api === 'anthropic') return anthropicRoute(bare);
  if (where.api === 'openai') return openaiRoute(bare);
  return geminiRoute(bare);
}

/**
 * A WebSocket upgrade (a GET, which `modelRoute` reads as free): Codex speaks the Responses API over
 * one at `…/responses`; any other socket on a model host (OpenAI's Realtime, Gemini's Live API,
 * Claude Code's voice dictation at api.anthropic.com/api/ws/…) is `unknown`.
 */
export function socketRoute(api: ModelApiHint, host: string, path: string): ModelRoute | undefined {
  const where = placeOf(api, host);
  if (where === undefined) return undefined;
  const bare = withoutQuery(path);
  if (!plainPath(bare)) return UNKNOWN;
  if (where.spaces !== undefined && !inSpace(bare, where.spaces)) return UNKNOWN;
  return where.api === 'openai' && /(?:^|\/)responses$/.test(bare) ? metered('openai', 'openai-responses') : UNKNOWN;
}

/**
 * A metered call whose answer a Google front would reshape: every `*.googleapis.com` API (and a
 * Gemini-format gateway, which may be one) reads system parameters that change what an answer
 * holds: `fields`, `$fields` and the X-Goog-FieldMask header keep only the members they name (so
 * `usageMetadata` can be left out), `alt=proto` answers in protobuf, `callback` wraps the JSON in a
 * call. So such a call is admitted only as the meters read it: a query of `key` and at most one
 * `alt` (`json` or `sse`), what the SDKs and CLIs send, and no field mask. Returns what else was
 * asked (for the refusal), or undefined.
 */
export function reshapedAnswer(plan: MeterPlan, host: string, query: string, fieldMask: boolean): string | undefined {
  if (plan.api !== 'gemini' && !host.toLowerCase().replace(/\.$/, '').endsWith('.googleapis.com')) return undefined;
  if (fieldMask) return 'the X-Goog-FieldMask header';
  if (query.length <= 1) return undefined;
  const params = new URLSearchParams(query.slice(1));
  let alts = 0;
  for (const [name, value] of params) {
    if (name === 'key') continue;
    if (name === 'alt' && (value === 'json' || value === 'sse') && ++alts === 1) continue;
    // The name only: a value the agent wrote does not go back into an error body.
    return `the query parameter ${JSON.stringify(name)}`;
  }
  return undefined;
}

/**
 * Media types of protobuf: gRPC (`application/grpc`, `+proto`, `+json`), gRPC-Web
 * (`application/grpc-web`, `-web+proto`, `-web-text`) and protobuf over HTTP. Google's front serves
 * gRPC and REST on the same host, so a gRPC request on a REST path may be answered in protobuf.
 */
const PROTOBUF_TYPE = /^\s*application\/(?:grpc|x-protobuf|protobuf|x-google-protobuf|vnd\.google\.protobuf)(?:[-+;\s]|$)/i;
/** The same in any member of an Accept list (one test, no split: it runs on every metered request under a budget). */
const PROTOBUF_ACCEPT = /(?:^|,)\s*application\/(?:grpc|x-protobuf|protobuf|x-google-protobuf|vnd\.google\.protobuf)(?:[-+;\s,]|$)/i;

/**
 * A metered call whose answer would be protobuf, not the JSON or SSE the meters read: a request
 * body of a protobuf type (a gRPC call on a REST path), or an Accept that names one. No meter reads
 * protobuf (gRPC's usage_metadata is in it): such a call is refused under a budget. Returns what it
 * carried (for the refusal), or undefined.
 */
export function protobufAnswer(contentType: string | undefined, accept: string | undefined): string | undefined {
  if (contentType !== undefined && PROTOBUF_TYPE.test(contentType)) return 'a gRPC or protobuf body: its answer is protobuf';
  if (accept !== undefined && PROTOBUF_ACCEPT.test(accept)) return 'an Accept of gRPC or protobuf';
  return undefined;
}

/** The API a request is read as, and the path space it is confined to (none: a hint covers every path). */
function placeOf(api: ModelApiHint, host: string): { api: ModelApi; spaces?: readonly string[]; free?: ReadonlySet<string>; vertex?: true } | undefined {
  if (api === 'none') return undefined;
  const known: HostDefault | undefined = hostDefault(host);
  if (api === undefined) return known;
  // A hint covers every path; a Vertex host keeps Claude's rawPredict whatever the hint says.
  return known?.vertex === true ? { api, vertex: true } : { api };
}

function withoutQuery(path: string): string {
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}

function plainPath(path: string): boolean {
  if (!PLAIN_PATH.test(path)) return false;
  if (path.length > 1 && path.endsWith('/')) return false;
  return !ODD_SEGMENT.test(path);
}

function inSpace(path: string, spaces: readonly string[]): boolean {
  // `;params` dropped first: a server that ignores them (Tomcat, Jetty, a loose router) serves
  // `/v1;x/messages` as /v1/messages, so that path is in the API's space, not outside it.
  const lower = path.replace(/;[^/]*/g, '').toLowerCase();
  return spaces.some((space) => lower.startsWith(space));
}

function anthropicRoute(path: string): ModelRoute {
  if (/(?:^|\/)messages\/count_tokens$/.test(path)) return FREE;
  if (/(?:^|\/)messages$/.test(path)) return metered('anthropic', 'anthropic-messages');
  // Message batches, the legacy /v1/complete, files, skills, admin calls: nothing keyway reads.
  return UNKNOWN;
}

function openaiRoute(path: string): ModelRoute {
  const deployment = /\/deployments\/([^/]+)\//.exec(path)?.[1] ?? null;
  if (/(?:^|\/)chat\/completions$/.test(path)) return metered('openai', 'openai-chat', deployment);
  if (/(?:^|\/)completions$/.test(path)) return metered('openai', 'openai-completions', deployment);
  if (/(?:^|\/)responses\/input_tokens$/.test(path)) return FREE;
  // compact answers a JSON object with the Responses API's usage (Codex compacts long sessions).
  if (/(?:^|\/)responses(?:\/compact)?$/.test(path)) return metered('openai', 'openai-responses', deployment);
  if (/(?:^|\/)embeddings$/.test(path)) return metered('openai', 'openai-embeddings', deployment);
  // Audio, images, videos, batches, moderations, realtime sessions, files, fine-tuning, assistants.
  return UNKNOWN;
}

/** Gemini CLI's Code Assist calls that run no model: its account, settings, quota and metrics. */
const CODE_ASSIST_FREE = new Set([
  'loadCodeAssist',
  'onboardUser',
  'listExperiments',
  'retrieveUserQuota',
  'fetchAdminControls',
  'recordCodeAssistMetrics',
  'getCodeAssistGlobalUserSetting',
  'setCodeAssistGlobalUserSetting',
  'countTokens',
]);

function geminiRoute(path: string): ModelRoute {
  const internal = /(?:^|\/)v1internal:([A-Za-z]+)$/.exec(path);
  if (internal !== null) {
    const method = internal[1]!;
    if (method === 'generateContent' || method === 'streamGenerateContent') return metered('gemini', 'gemini-code-assist');
    return CODE_ASSIST_FREE.has(method) ? FREE : UNKNOWN;
  }
  const call = /(?:^|\/)models\/([^/:]+):([A-Za-z]+)$/.exec(path);
  if (call === null) return UNKNOWN;
  const [, model, method] = call;
  if (method === 'generateContent' || method === 'streamGenerateContent') return metered('gemini', 'gemini-generate', model!);
  if (method === 'countTokens' || method === 'computeTokens') return FREE;
  // embedContent answers carry no usage (Vertex's billable characters only), predict is Imagen and
  // the like, batchGenerateContent a batch: none can be metered.
  return UNKNOWN;
}

/** Claude on Vertex (its own hosts, or behind a gateway with the `anthropic` hint): `…/publishers/anthropic/models/MODEL:rawPredict|streamRawPredict`, in the Messages format. */
function vertexClaude(path: string): ModelRoute | undefined {
  const call = /\/publishers\/anthropic\/models\/([^/:]+):([A-Za-z]+)$/.exec(path);
  if (call === null) return undefined;
  const [, model, method] = call;
  if (model === 'count-tokens') return method === 'rawPredict' ? FREE : UNKNOWN;
  return method === 'rawPredict' || method === 'streamRawPredict' ? metered('anthropic', 'anthropic-messages', model!) : UNKNOWN;
}
