// OpenAI's Codex CLI (@openai/codex 0.171.0, a Rust binary), from the CLI itself: run under
// `keyway run --contain` against loopback stand-ins with proxy.unmatched deny, and read in its
// binary (helper agents' facts, issue 62). Marked [strings] where only read there, not seen in a run.
export const CODEX = {
  description: "OpenAI's Codex CLI (codex exec for one prompt, headless)",
  command: 'codex',
  hosts: [
    // Seen: a WebSocket to /v1/responses (Responses events as text frames), falling back to POST
    // /v1/responses with SSE when the upgrade fails.
    { host: 'api.openai.com', why: 'the model API with an API key (Responses over a WebSocket, else SSE)', role: 'model' },
    // Seen with a ChatGPT login: account check, models, and the model over a WebSocket, all here.
    { host: 'chatgpt.com', why: 'the model with a ChatGPT login (/backend-api/codex/responses), its account and models', role: 'model' },
    // Seen: the login's refresh at start (POST /oauth/token, JSON). Its first sign-in (authorize,
    // device code) is UNCONFIRMED [strings].
    { host: 'auth.openai.com', why: 'the ChatGPT login: tokens refreshed (POST /oauth/token)', role: 'login' },
    // Seen, and gone with the switches in its config.toml (no variable turns them off):
    // `[analytics] enabled = false` and `[features] plugins = false`.
    { host: 'ab.chatgpt.com', why: 'telemetry (OTLP metrics); off with [analytics] enabled = false', role: 'off' },
    { host: 'github.com', why: 'its plugin marketplace; off with [features] plugins = false', role: 'off' },
    { host: 'api.github.com', why: 'its plugin marketplace; off with [features] plugins = false', role: 'off' },
  ],
  // CODEX_HOME, where everything lives (sessions, sqlite files, auth.json); it writes nothing outside.
  state: [{ path: '~/.codex', kind: 'folder' }],
  // Sent as a Bearer token (seen). CODEX_API_KEY is read too [strings]: not listed, one is enough.
  keys: [{ env: 'OPENAI_API_KEY', host: 'api.openai.com' }],
  env: {},
  pass_env: [],
  // It trusted keyway's CA contained with nothing set (the system bundle). It reads both of these
  // [strings]: keyway sets SSL_CERT_FILE, and CODEX_CA_CERTIFICATE to the same bundle.
  ca: ['SSL_CERT_FILE', 'CODEX_CA_CERTIFICATE'],
  ports: [],
  sockets: [],
};
