import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Stand-ins for the coding agents' own login commands (`claude auth login`, `codex login`, and
// `gemini`'s Login with Google), for the
// tests of `keyway connect AGENT --login`. The real ones open a browser; these do what follows the
// browser: post an authorization code to the agent's token endpoint (through keyway, as `keyway run`
// points them: HTTPS_PROXY, NODE_USE_ENV_PROXY, keyway's CA) and write the agent's credential file
// in the agent's own shape (read from the agents themselves: /tmp/agents-facts.md of issue 62).
// `refresh` posts the stored refresh token back, as the agents do when their access token expires.
// The token endpoint's port comes from STANDIN_PORT: the stand-in listens on loopback, port 0.

const SCRIPT = String.raw`
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { basename, join } = require('node:path');
const agent = basename(process.argv[1]);
const words = process.argv.slice(2).join(' ');
const port = process.env.STANDIN_PORT;
const home = process.env.HOME;

async function post(url, body, json) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded' },
    body: json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  if (res.status !== 200) { console.error(agent + ': token endpoint answered ' + res.status + ': ' + text.slice(0, 200)); process.exit(1); }
  return JSON.parse(text);
}

async function claude() {
  const dir = process.env.CLAUDE_CONFIG_DIR || join(home, '.claude');
  const file = join(dir, '.credentials.json');
  const url = 'https://platform.claude.com:' + port + '/v1/oauth/token';
  let answer;
  if (words === 'auth login --claudeai') {
    answer = await post(url, { grant_type: 'authorization_code', code: 'code-from-the-browser', redirect_uri: 'http://localhost:54545/callback', client_id: 'claude-client', code_verifier: 'v'.repeat(43), state: 's'.repeat(43) }, true);
  } else if (words === 'refresh') {
    const old = JSON.parse(readFileSync(file, 'utf8')).claudeAiOauth;
    answer = await post(url, { grant_type: 'refresh_token', refresh_token: old.refreshToken, client_id: 'claude-client', scope: 'user:inference' }, true);
  } else { console.error('claude: unexpected ' + words); process.exit(2); }
  mkdirSync(dir, { recursive: true });
  const oauth = { accessToken: answer.access_token, refreshToken: answer.refresh_token, expiresAt: Date.now() + answer.expires_in * 1000, scopes: String(answer.scope).split(' '), subscriptionType: 'max' };
  // Its other members kept, as claude keeps them (an MCP server's login).
  let before = {};
  try { before = JSON.parse(readFileSync(file, 'utf8')); } catch {}
  writeFileSync(file, JSON.stringify({ ...before, claudeAiOauth: oauth }), { mode: 0o600 });
  // Its settings file, where the real one keeps it: beside its folder, or in it under CLAUDE_CONFIG_DIR.
  if (words === 'auth login --claudeai') writeFileSync(process.env.CLAUDE_CONFIG_DIR ? join(dir, '.claude.json') : join(home, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: 'ada@example.test' } }));
  console.log('claude: logged in');
}

async function codex() {
  const dir = process.env.CODEX_HOME || join(home, '.codex');
  const file = join(dir, 'auth.json');
  const url = 'https://auth.openai.com:' + port + '/oauth/token';
  let answer;
  if (words === 'login') {
    answer = await post(url, { grant_type: 'authorization_code', code: 'code-from-the-browser', redirect_uri: 'http://localhost:1455/auth/callback', client_id: 'codex-client', code_verifier: 'v'.repeat(43) }, false);
  } else if (words === 'refresh') {
    const old = JSON.parse(readFileSync(file, 'utf8')).tokens;
    answer = await post(url, { client_id: 'codex-client', grant_type: 'refresh_token', refresh_token: old.refresh_token }, true);
  } else { console.error('codex: unexpected ' + words); process.exit(2); }
  mkdirSync(dir, { recursive: true });
  // After a sign-in, codex also asks for an API key, with the ID token as the subject of an exchange.
  let apiKey = null;
  if (words === 'login') {
    const exchanged = await post(url, { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: 'codex-client', requested_token: 'openai-api-key', subject_token: answer.id_token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, false);
    apiKey = exchanged.access_token;
  }
  const tokens = { id_token: answer.id_token, access_token: answer.access_token, refresh_token: answer.refresh_token, account_id: 'acct-1' };
  const before = words === 'login' ? null : JSON.parse(readFileSync(file, 'utf8')).OPENAI_API_KEY;
  writeFileSync(file, JSON.stringify({ auth_mode: 'chatgpt', OPENAI_API_KEY: apiKey ?? before, tokens, last_refresh: new Date().toISOString() }, null, 2), { mode: 0o600 });
  console.log('codex: logged in');
}

async function gemini() {
  const dir = join(home, '.gemini');
  const file = join(dir, 'oauth_creds.json');
  const url = 'https://oauth2.googleapis.com:' + port + '/token';
  const client = { client_id: 'gemini-client.apps.googleusercontent.com', client_secret: 'GOCSPX-public-installed-app' };
  let answer;
  if (words === '') {
    answer = await post(url, { ...client, grant_type: 'authorization_code', code: 'code-from-the-browser', redirect_uri: 'http://127.0.0.1:40404/oauth2callback', code_verifier: 'v'.repeat(43) }, false);
  } else if (words === 'refresh') {
    const old = JSON.parse(readFileSync(file, 'utf8'));
    answer = await post(url, { ...client, grant_type: 'refresh_token', refresh_token: old.refresh_token }, false);
    // Google does not rotate: the answer has no refresh token, and the one held stays.
    answer.refresh_token = answer.refresh_token ?? old.refresh_token;
    answer.id_token = answer.id_token ?? old.id_token;
  } else { console.error('gemini: unexpected ' + words); process.exit(2); }
  mkdirSync(dir, { recursive: true });
  const creds = { access_token: answer.access_token, refresh_token: answer.refresh_token, scope: answer.scope, token_type: 'Bearer', id_token: answer.id_token, expiry_date: Date.now() + answer.expires_in * 1000 };
  writeFileSync(file, JSON.stringify(creds, null, 2), { mode: 0o600 });
  console.log('gemini: Authentication succeeded');
}

({ claude, codex, gemini })[agent]().catch((err) => { console.error(agent + ': ' + (err.cause?.code ?? err.message)); process.exit(1); });
`;

/** A folder with `claude`, `codex` and `gemini` scripts run by this Node, to put first on PATH. */
export function scriptedAgentBin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-agents-bin-'));
  for (const name of ['claude', 'codex', 'gemini']) {
    const path = join(dir, name);
    writeFileSync(path, `#!${process.execPath}\n${SCRIPT}`);
    chmodSync(path, 0o755);
  }
  return dir;
}
