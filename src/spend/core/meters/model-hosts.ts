import type { ModelApi } from '../usage.ts';

// The vendors' own model hosts (issue 85), which keyway meters with no `model_api` hint on the
// grant: each with its API's path spaces, and the POSTs outside them that are known not to run a
// model (a vendor CLI's telemetry, account and settings calls). Default deny: on a model host,
// every request is metered, free (a read, or a POST on its `free` list) or `unknown` (refused while
// a budget applies): routes.ts. A host is a model host when its name (lower case, no trailing dot)
// is listed here or matches one of the patterns below; no other host is, without a hint.

export interface HostDefault {
  readonly api: ModelApi;
  /** Path prefixes (lower case) of the model API on this host: routes.ts reads the calls there. */
  readonly spaces: readonly string[];
  /**
   * POSTs outside the spaces known to run no model, by exact path (case and all): what the pinned
   * agent CLIs send there. Any other POST outside the spaces is `unknown`.
   */
  readonly free?: ReadonlySet<string>;
  /** Vertex hosts Anthropic's models too (rawPredict with the Messages format). */
  readonly vertex?: true;
}

// Claude Code 2.1.332 (read in its binary: the paths it POSTs to api.anthropic.com outside /v1/;
// every other call there under /api/ is a GET: settings, policy limits, its OAuth profile and usage).
// Its title generator (/api/organizations/…/dust/generate_title_and_branch) runs a model: not here.
const ANTHROPIC_FREE = new Set([
  '/api/event_logging/batch',
  '/api/event_logging/v2/batch',
  '/api/claude_code/metrics',
  '/api/claude_cli_feedback',
  '/api/claude_code_shared_session_transcripts',
  '/api/oauth/account/grove_notice_viewed',
]);

// Codex 0.171.0 under a ChatGPT login (read in its binary): its usage queries are POSTs that run no
// model. Its cloud tasks (/backend-api/wham/tasks) do, and ChatGPT's own web API
// (/backend-api/conversation) is a model call: neither is here.
const CHATGPT_FREE = new Set(['/backend-api/wham/usage/thread_usage/query', '/backend-api/wham/usage/thread-estimates/query']);

const VERTEX: HostDefault = { api: 'gemini', spaces: ['/v1/', '/v1beta1/'], vertex: true };
const OPENAI: HostDefault = { api: 'openai', spaces: ['/v1/'] };
const CHATGPT: HostDefault = { api: 'openai', spaces: ['/backend-api/codex/'], free: CHATGPT_FREE };
// /ws/ is the Live API's socket (not metered: unknown). gRPC calls
// (/google.ai.generativelanguage.v1beta.GenerativeService/GenerateContent) are outside the spaces: unknown.
const GEMINI: HostDefault = { api: 'gemini', spaces: ['/v1/', '/v1beta/', '/v1alpha/', '/ws/'] };

const NAMED: ReadonlyMap<string, HostDefault> = new Map<string, HostDefault>([
  ['api.anthropic.com', { api: 'anthropic', spaces: ['/v1/'], free: ANTHROPIC_FREE }],
  ['api.openai.com', OPENAI],
  // Codex under a ChatGPT login; the rest of chatgpt.com is the website and its account calls.
  ['chatgpt.com', CHATGPT],
  // ChatGPT's former name, still answering for it.
  ['chat.openai.com', CHATGPT],
  ['generativelanguage.googleapis.com', GEMINI],
  // Gemini CLI under a Google login (Code Assist): /v1internal:METHOD.
  ['cloudcode-pa.googleapis.com', { api: 'gemini', spaces: ['/v1internal:'] }],
  ['aiplatform.googleapis.com', VERTEX],
]);

/**
 * Regional and alias names of the hosts above, as patterns (each anchored: a name with one more or
 * one less label, or another suffix, is not taken):
 * - OpenAI's data residency: `eu.api.openai.com`, and any other one-label region before api.openai.com;
 * - Vertex by region: `us-central1-aiplatform.googleapis.com`; its regional endpoints (REP):
 *   `aiplatform.us.rep.googleapis.com`, `aiplatform.europe-west4.rep.googleapis.com`;
 * - Private Service Connect names of Vertex and Gemini: `aiplatform-genai1.p.googleapis.com`,
 *   `us-central1-aiplatform-ep1.p.googleapis.com`, `generativelanguage-ep1.p.googleapis.com`.
 * Google's mTLS names (`X.mtls.googleapis.com` for `X.googleapis.com`) are read as the name without
 * `.mtls` first (hostDefault).
 */
const PATTERNS: ReadonlyArray<readonly [RegExp, HostDefault]> = [
  [/^[a-z0-9-]+\.api\.openai\.com$/, OPENAI],
  [/^[a-z0-9-]+-aiplatform\.googleapis\.com$/, VERTEX],
  [/^aiplatform\.[a-z0-9-]+\.rep\.googleapis\.com$/, VERTEX],
  [/^(?:[a-z0-9-]+-)?aiplatform-[a-z0-9]+\.p\.googleapis\.com$/, VERTEX],
  [/^generativelanguage-[a-z0-9]+\.p\.googleapis\.com$/, GEMINI],
];

const MTLS = /\.mtls\.googleapis\.com$/;

/** The vendor's defaults for a host name (any case, a trailing dot allowed); undefined: not a model host. */
export function hostDefault(host: string): HostDefault | undefined {
  let name = host.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (MTLS.test(name)) name = `${name.slice(0, -'.mtls.googleapis.com'.length)}.googleapis.com`;
  const named = NAMED.get(name);
  if (named !== undefined) return named;
  for (const [pattern, found] of PATTERNS) if (pattern.test(name)) return found;
  return undefined;
}
