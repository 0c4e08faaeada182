// Google's Gemini CLI (@google/gemini-cli).
// UNCONFIRMED: filled from the facts file as they arrive; every entry below not yet checked against the CLI.
export const GEMINI_CLI = {
  description: "Google's Gemini CLI",
  command: 'gemini',
  hosts: [{ host: 'generativelanguage.googleapis.com', why: 'the model API (streamGenerateContent)', role: 'model' }],
  state: [{ path: '~/.gemini', kind: 'folder' }],
  keys: [{ env: 'GEMINI_API_KEY', host: 'generativelanguage.googleapis.com' }],
  env: {},
  pass_env: [],
  ca: ['NODE_EXTRA_CA_CERTS'],
  ports: [],
  sockets: [],
};
