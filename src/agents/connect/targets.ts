// What `keyway connect claude-code | codex | gemini-cli` knows of each coding agent: where its model
// API is and how a key goes on it, and how its subscription login runs (which token endpoint, which
// credential file, which command). Data only. Every entry was read from the agent itself (its
// bundled code, its --help, a run against loopback stand-ins: /tmp/agents-facts.md of issue 62),
// and the API-key injections are docs/credentials.md's recipes for the same vendors.

/** The agents `keyway connect` sets up, by the name their profiles carry. */
export const AGENT_TARGET_NAMES = ['claude-code', 'codex', 'gemini-cli'] as const;
export type AgentTargetName = (typeof AGENT_TARGET_NAMES)[number];

export interface ApiKeyWay {
  /** The vendor's API hosts the key is for (the grant's domains). */
  readonly hosts: readonly string[];
  /** How the key goes on each request: the header, and its value with `{secret}` for the key. */
  readonly header: string;
  readonly format: string;
  /** The variable the agent reads its key from (set to keyway's placeholder by `keyway env` / `run`). */
  readonly variable: string;
}

/** A token endpoint, as the agent calls it (one host, the path as the server routes it). */
export interface TokenEndpoint {
  readonly host: string;
  readonly path: string;
}

/** A subscription login keyway can own: the agent logs in itself, and keyway captures what its token endpoint answers. */
export interface CapturedLogin {
  readonly capturable: true;
  /** The flow, in words, for the help and the docs. */
  readonly flow: string;
  /** The token endpoints the agent posts to (code exchange and refresh). */
  readonly endpoints: readonly TokenEndpoint[];
  /** The hosts the access token goes to, as `Authorization: Bearer` (capture.resolve's default). */
  readonly domains: readonly string[];
  /** The login command, as the user would type it. */
  readonly command: readonly string[];
  /** Where the agent keeps the tokens it got (~ is the user's home). */
  readonly credentialFile: string;
}

/** A login whose tokens never pass a proxy keyway can read, or that keyway cannot hold: said, and refused. */
export interface UncapturedLogin {
  readonly capturable: false;
  readonly flow: string;
  /** Why keyway cannot own it, and what to do instead. */
  readonly reason: string;
}

export interface AgentTarget {
  readonly name: AgentTargetName;
  /** For people: the agent's own name. */
  readonly title: string;
  /** The agent's program, as installed from npm. */
  readonly program: string;
  readonly apiKey: ApiKeyWay;
  readonly login: CapturedLogin | UncapturedLogin;
}

export const AGENT_TARGETS: { readonly [N in AgentTargetName]: AgentTarget } = {
  'claude-code': {
    name: 'claude-code',
    title: 'Claude Code',
    program: 'claude',
    // Claude Code sends ANTHROPIC_API_KEY as x-api-key to api.anthropic.com (seen in a run).
    apiKey: { hosts: ['api.anthropic.com'], header: 'x-api-key', format: '{secret}', variable: 'ANTHROPIC_API_KEY' },
    login: {
      capturable: true,
      flow: 'OAuth authorization code with PKCE in a browser (claude.ai or console account); the code comes back to a loopback redirect or is pasted, and claude exchanges it itself, as it refreshes, with a JSON POST to platform.claude.com/v1/oauth/token',
      endpoints: [{ host: 'platform.claude.com', path: '/v1/oauth/token' }],
      // The access token goes to the model API as Authorization: Bearer (with the oauth beta header).
      domains: ['api.anthropic.com'],
      command: ['claude', 'auth', 'login'],
      credentialFile: '~/.claude/.credentials.json',
    },
  },
  codex: {
    name: 'codex',
    title: 'Codex CLI',
    program: 'codex',
    apiKey: { hosts: ['api.openai.com'], header: 'Authorization', format: 'Bearer {secret}', variable: 'OPENAI_API_KEY' },
    login: {
      capturable: true,
      flow: 'ChatGPT sign-in: OAuth authorization code with PKCE in a browser, back to a loopback redirect (localhost:1455), or a device code (codex login --device-auth); codex exchanges the code itself, as it refreshes, at auth.openai.com/oauth/token',
      endpoints: [{ host: 'auth.openai.com', path: '/oauth/token' }],
      // Signed in with ChatGPT, codex sends the access token to chatgpt.com's backend API (its model
      // calls included), not to api.openai.com.
      domains: ['chatgpt.com'],
      command: ['codex', 'login'],
      credentialFile: '~/.codex/auth.json',
    },
  },
  'gemini-cli': {
    name: 'gemini-cli',
    title: 'Gemini CLI',
    program: 'gemini',
    apiKey: { hosts: ['generativelanguage.googleapis.com'], header: 'x-goog-api-key', format: '{secret}', variable: 'GEMINI_API_KEY' },
    login: { capturable: false, flow: 'not yet read from the agent', reason: 'not yet read from the agent' },
  },
};

export function isAgentTarget(name: string): name is AgentTargetName {
  return (AGENT_TARGET_NAMES as readonly string[]).includes(name);
}
