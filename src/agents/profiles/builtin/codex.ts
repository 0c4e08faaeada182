// OpenAI's Codex CLI (@openai/codex).
// UNCONFIRMED: filled from the facts file as they arrive; every entry below not yet checked against the CLI.
export const CODEX = {
  description: "OpenAI's Codex CLI",
  command: 'codex',
  hosts: [{ host: 'api.openai.com', why: 'the model API (Responses, SSE)', role: 'model' }],
  state: [{ path: '~/.codex', kind: 'folder' }],
  keys: [{ env: 'OPENAI_API_KEY', host: 'api.openai.com' }],
  env: {},
  pass_env: [],
  ca: [],
  ports: [],
  sockets: [],
};
