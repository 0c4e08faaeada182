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

/** Where a token sits in the agent's credential file (a JSON path), and which token-endpoint field it is. */
export interface FileToken {
  readonly path: readonly string[];
  readonly field: 'access_token' | 'refresh_token' | 'id_token';
}

/** The agent's credential file: where it is, and where its tokens sit in it. */
export interface CredentialFileShape {
  /** Its place under the user's home. */
  readonly home: string;
  /** The variable that moves it, and its place under the folder the variable names. */
  readonly moved?: { readonly variable: string; readonly inside: string };
  readonly tokens: readonly FileToken[];
  /** Where the access token's expiry is kept, as milliseconds since the epoch. */
  readonly expiresAtMs?: readonly string[];
}

/**
 * Where the access token goes, as `Authorization: Bearer`: one host the agent's profile names, and
 * the paths it is sent on there (exact, or a prefix ending in `*`: capture.resolve's path). Nowhere
 * else: a placeholder on another host or path of the grant is refused, never resolved.
 */
export interface BearerPlace {
  readonly host: string;
  readonly paths: readonly string[];
}

/** A subscription login keyway can own: the agent logs in itself, and keyway captures what its token endpoint answers. */
export interface CapturedLogin {
  readonly capturable: true;
  /** The flow, in words, for the help and the docs. */
  readonly flow: string;
  /** The token endpoints the agent posts to (code exchange and refresh). */
  readonly endpoints: readonly TokenEndpoint[];
  /** Where the access token goes (the grant's domains are these hosts, and its only Authorization positions). */
  readonly bearer: readonly BearerPlace[];
  /** The login command, as the user would type it. */
  readonly command: readonly string[];
  /** Where the agent keeps the tokens it got (~ is the user's home). */
  readonly credentialFile: string;
  /** Its shape, for `--import` of a login made before keyway. */
  readonly file: CredentialFileShape;
  /** What the person does once the command runs, when it is more than following the browser. */
  readonly hint?: string;
  /**
   * The agent keeps more than its login in the folder its login file is in, and moves all of it
   * with `file.moved`'s variable: the login then runs with that variable on a private folder keyway
   * makes and removes after, and only the login file is taken from there into its place in the
   * home (connect/login-run.ts). Set where what the login run writes beside it would change the
   * agent's next start (Claude Code: its settings file and backups of it, issue 86).
   */
  readonly ownFolder?: true;
  /** Answer members at the token endpoint that are no credential though they look like one (capture.pass.fields). */
  readonly pass?: readonly string[];
  /** Where else the agent puts a token, beside `bearer` (each with its host and path). */
  readonly resolve?: ReadonlyArray<{
    readonly in: 'header' | 'query' | 'body';
    readonly name: string;
    readonly host?: string;
    readonly path?: string;
    readonly fields?: readonly string[];
  }>;
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
      flow: 'the Claude subscription login: OAuth code with PKCE in a browser, back to a loopback redirect or pasted; claude exchanges the code and refreshes with a JSON POST to platform.claude.com/v1/oauth/token',
      endpoints: [{ host: 'platform.claude.com', path: '/v1/oauth/token' }],
      // The access token goes to the model API as Authorization: Bearer (with the oauth beta header):
      // the model (/v1/messages), the account's profile and roles (/api/oauth/...), its settings and
      // policy limits (/api/claude_code/...). Never to platform.claude.com, which gets only refreshes.
      bearer: [{ host: 'api.anthropic.com', paths: ['/v1/*', '/api/*'] }],
      // --claudeai, said rather than left to the default: the Console login (--console) mints an API
      // key at api.anthropic.com/api/oauth/claude_cli/create_api_key, an answer on the model API's
      // host that keyway could only hold by reading every model answer whole (event streams refused).
      command: ['claude', 'auth', 'login', '--claudeai'],
      credentialFile: '~/.claude/.credentials.json',
      // Run in ~/.claude, its login writes ~/.claude.json and ~/.claude/backups/.claude.json.backup.N
      // even when it is cut short at its prompt; a later run with CLAUDE_CONFIG_DIR=~/.claude (the
      // profile's) finds that backup, no .claude.json beside it, and prints "Claude configuration
      // file not found" (seen with 2.1.332).
      ownFolder: true,
      file: {
        home: '.claude/.credentials.json',
        moved: { variable: 'CLAUDE_CONFIG_DIR', inside: '.credentials.json' },
        tokens: [
          { path: ['claudeAiOauth', 'accessToken'], field: 'access_token' },
          { path: ['claudeAiOauth', 'refreshToken'], field: 'refresh_token' },
        ],
        expiresAtMs: ['claudeAiOauth', 'expiresAt'],
      },
      // Its token answer names the account it signed in (claude keeps them as tokenAccount): ids and
      // an email, no credential, but long enough to look like one to capture's default deny.
      pass: ['account.uuid', 'account.email_address', 'organization.uuid', 'organization.name', 'workspace.id', 'workspace.name'],
    },
  },
  codex: {
    name: 'codex',
    title: 'Codex CLI',
    program: 'codex',
    apiKey: { hosts: ['api.openai.com'], header: 'Authorization', format: 'Bearer {secret}', variable: 'OPENAI_API_KEY' },
    login: {
      capturable: true,
      flow: 'the ChatGPT sign-in: OAuth code with PKCE in a browser, back to a loopback redirect on localhost:1455 (or a device code: codex login --device-auth); codex exchanges the code and refreshes at auth.openai.com/oauth/token',
      endpoints: [{ host: 'auth.openai.com', path: '/oauth/token' }],
      // Signed in with ChatGPT, codex sends the access token to chatgpt.com's backend API (its model
      // calls included: /backend-api/codex/responses), not to api.openai.com.
      bearer: [{ host: 'chatgpt.com', paths: ['/backend-api/*'] }],
      command: ['codex', 'login'],
      credentialFile: '~/.codex/auth.json',
      file: {
        home: '.codex/auth.json',
        moved: { variable: 'CODEX_HOME', inside: 'auth.json' },
        tokens: [
          { path: ['tokens', 'access_token'], field: 'access_token' },
          { path: ['tokens', 'refresh_token'], field: 'refresh_token' },
          { path: ['tokens', 'id_token'], field: 'id_token' },
          // The API key its sign-in exchanged the ID token for: an access token of the same login.
          { path: ['OPENAI_API_KEY'], field: 'access_token' },
        ],
      },
      resolve: [
        // Its binary also asks the token endpoint for an API key (an RFC 8693 exchange, requested_token
        // openai-api-key) with the ID token as subject_token: the real ID token goes back to the
        // server that issued it, and the key it answers with is captured like the other tokens.
        { in: 'body', name: 'subject_token', host: 'auth.openai.com', path: '/oauth/token', fields: ['id_token'] },
      ],
    },
  },
  'gemini-cli': {
    name: 'gemini-cli',
    title: 'Gemini CLI',
    program: 'gemini',
    apiKey: { hosts: ['generativelanguage.googleapis.com'], header: 'x-goog-api-key', format: '{secret}', variable: 'GEMINI_API_KEY' },
    login: {
      capturable: true,
      flow: 'Login with Google, chosen in its interactive screen: OAuth code with PKCE in a browser, back to a loopback redirect (or pasted, with NO_BROWSER=true); gemini exchanges the code and refreshes (the refresh token does not rotate) with a form POST to oauth2.googleapis.com/token',
      endpoints: [{ host: 'oauth2.googleapis.com', path: '/token' }],
      // The access token goes to Code Assist (its model calls, all under /v1internal: loadCodeAssist,
      // streamGenerateContent, an onboarding's operations), to tokeninfo (its auth library checks a
      // refreshed token there: POST, the token as Bearer) and to Google's userinfo endpoint (the
      // account's email, which it caches), and nowhere else on www.googleapis.com: Drive, Gmail and
      // the rest of Google's APIs answer there too.
      bearer: [
        { host: 'cloudcode-pa.googleapis.com', paths: ['/v1internal*'] },
        { host: 'oauth2.googleapis.com', paths: ['/tokeninfo'] },
        { host: 'www.googleapis.com', paths: ['/oauth2/v2/userinfo'] },
      ],
      command: ['gemini'],
      hint: 'choose "Login with Google"; once it says "Authentication succeeded", leave it with /quit',
      credentialFile: '~/.gemini/oauth_creds.json',
      file: {
        home: '.gemini/oauth_creds.json',
        moved: { variable: 'GEMINI_CLI_HOME', inside: '.gemini/oauth_creds.json' },
        tokens: [
          { path: ['access_token'], field: 'access_token' },
          { path: ['refresh_token'], field: 'refresh_token' },
          { path: ['id_token'], field: 'id_token' },
        ],
        expiresAtMs: ['expiry_date'],
      },
    },
  },
};

export function isAgentTarget(name: string): name is AgentTargetName {
  return (AGENT_TARGET_NAMES as readonly string[]).includes(name);
}
