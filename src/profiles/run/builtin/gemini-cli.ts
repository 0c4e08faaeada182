// Google's Gemini CLI (@google/gemini-cli 0.61.0, a Node bundle), from the CLI itself: run under
// `keyway run --contain` against a loopback stand-in with proxy.unmatched deny, and read in its code
// (helper agents' facts, issue 62). Marked [code] where only read there, not seen in a run.
export const GEMINI_CLI = {
  description: "Google's Gemini CLI (gemini -p for one prompt, headless)",
  command: 'gemini',
  hosts: [
    // Seen: POST /v1beta/models/MODEL:streamGenerateContent?alt=sse, the key as x-goog-api-key.
    { host: 'generativelanguage.googleapis.com', why: 'the model API with an API key (streamGenerateContent, SSE)', role: 'model' },
    // UNCONFIRMED [code]: with a Google login, the model is Code Assist's, here (v1internal:streamGenerateContent).
    { host: 'cloudcode-pa.googleapis.com', why: 'the model with a Google login (Code Assist, v1internal)', role: 'model' },
    // UNCONFIRMED [code]: the Google login's refresh (form body; the refresh token does not rotate).
    { host: 'oauth2.googleapis.com', why: 'the Google login: tokens refreshed (POST /token)', role: 'login' },
    // UNCONFIRMED [code]: once signed in with Google, the account's email, which it caches (a failure
    // is only logged). `keyway connect gemini-cli` puts the login's token on this one path of the host.
    { host: 'www.googleapis.com', why: "the Google login: the account's email (GET /oauth2/v2/userinfo)", role: 'login' },
    // Seen, and gone with {"privacy": {"usageStatisticsEnabled": false}} in ~/.gemini/settings.json
    // (no variable turns it off).
    { host: 'play.googleapis.com', why: 'usage statistics (Clearcut); off with privacy.usageStatisticsEnabled false in ~/.gemini/settings.json', role: 'off' },
  ],
  // Everything it writes (projects, history, chats, logs) is in ~/.gemini (seen).
  state: [{ path: '~/.gemini', kind: 'folder' }],
  // Sent as x-goog-api-key (seen). It reads GOOGLE_API_KEY too and prefers it when both are set;
  // keyway's own placeholders set both for a grant on this host, which it says and takes in its stride.
  keys: [{ env: 'GEMINI_API_KEY', host: 'generativelanguage.googleapis.com' }],
  // Its OpenTelemetry export, off by default [code]: kept off whatever a settings file says.
  env: { GEMINI_TELEMETRY_ENABLED: 'false' },
  pass_env: [],
  // A Node program: it trusts keyway's CA through NODE_EXTRA_CA_CERTS (seen), which keyway sets anyway.
  ca: ['NODE_EXTRA_CA_CERTS'],
  ports: [],
  sockets: [],
};
