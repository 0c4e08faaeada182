// Anthropic's Claude Code CLI (@anthropic-ai/claude-code 2.1.332), from the CLI itself: run under
// `keyway run --contain` against a loopback stand-in with proxy.unmatched deny, and read in its code
// (helper agents' facts, issue 62). Marked [code] where only read, not yet seen in a run.
export const CLAUDE_CODE = {
  description: "Anthropic's Claude Code CLI (claude -p for one prompt, headless)",
  command: 'claude',
  hosts: [
    // Seen in a run: the only host dialled, with the switches below on (settings, policy limits, messages).
    { host: 'api.anthropic.com', why: 'the model API (POST /v1/messages, SSE) and its settings and policy limits', role: 'model' },
    // UNCONFIRMED [code]: its subscription login refreshes here (POST /v1/oauth/token, JSON); not yet seen in a run.
    { host: 'platform.claude.com', why: 'the subscription login: tokens minted and refreshed (POST /v1/oauth/token)', role: 'login' },
  ],
  // All of its state in one folder: with CLAUDE_CONFIG_DIR set, .claude.json lives in there too, and
  // is saved by writing a temporary file beside it and renaming it; a read-only home (--contain) makes
  // ~/.claude.json itself unsavable, so the profile moves it (seen in a run).
  state: [{ path: '~/.claude', kind: 'folder' }],
  // Sent as x-api-key (seen). It also reads ANTHROPIC_AUTH_TOKEN (sent as a Bearer token) [code]: not
  // listed, or an api_key grant would get both headers on one request.
  keys: [{ env: 'ANTHROPIC_API_KEY', host: 'api.anthropic.com' }],
  env: {
    CLAUDE_CONFIG_DIR: '~/.claude',
    // With these four, a run calls nothing but the three paths above (seen): no update check, no
    // telemetry or error reports, no feature flags.
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
  },
  pass_env: [],
  // A Bun binary: it trusted keyway's CA contained with no setting (the system bundle there holds
  // it); it reads both of these [code], which keyway sets anyway.
  ca: ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE'],
  ports: [],
  sockets: [],
};
