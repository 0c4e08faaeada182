// Anthropic's Claude Code CLI (@anthropic-ai/claude-code).
// UNCONFIRMED: filled from the facts file as they arrive; every entry below not yet checked against the CLI.
export const CLAUDE_CODE = {
  description: "Anthropic's Claude Code CLI",
  command: 'claude',
  hosts: [{ host: 'api.anthropic.com', why: 'the model API (Messages, SSE)', role: 'model' }],
  state: [
    { path: '~/.claude', kind: 'folder' },
    { path: '~/.claude.json', kind: 'file' },
  ],
  keys: [{ env: 'ANTHROPIC_API_KEY', host: 'api.anthropic.com' }],
  env: {},
  pass_env: [],
  ca: ['NODE_EXTRA_CA_CERTS'],
  ports: [],
  sockets: [],
};
