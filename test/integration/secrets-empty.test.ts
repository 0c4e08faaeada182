// Defect 6: empty or whitespace-only secret material is refused wherever it enters keyway, with a
// message that names where it came from and never the value.
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../../src/admin/token.ts';
import { readSecretRef } from '../../src/config/index.ts';
import { AgentTable, hashAgentKey, type Agent } from '../../src/credentials/agents.ts';
import { parseMaterial } from '../../src/credentials/types/index.ts';
import { staticCredential } from '../../src/credentials/providers/static.ts';
import { requestToken } from '../../src/credentials/issuing/token-endpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyway-secrets-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('secret references (env:, file:)', () => {
  it.each([
    ['an empty variable', ''],
    ['a variable of spaces', '   '],
    ['a variable of a newline and a tab', '\n\t'],
  ])('refuses %s, naming the variable', (_what, value) => {
    expect(() => readSecretRef({ kind: 'env', name: 'AGENT_KEY' }, { AGENT_KEY: value }, dir)).toThrow(/^environment variable AGENT_KEY is empty$/);
  });

  it.each([
    ['an empty file', ''],
    ['a file with only a newline', '\n'],
    ['a file of whitespace', '  \r\n  \n'],
  ])('refuses %s, naming the file', (_what, text) => {
    const path = file(`blank-${text.length}`, text);
    expect(() => readSecretRef({ kind: 'file', path }, {}, dir)).toThrow(`file ${path} is empty`);
  });

  it('still reads real material, without its trailing newline', () => {
    expect(readSecretRef({ kind: 'file', path: file('real', 's3cret\n') }, {}, dir)).toBe('s3cret');
    expect(readSecretRef({ kind: 'env', name: 'K' }, { K: ' padded ' }, dir)).toBe(' padded ');
  });
});

describe('material typed for `keyway secrets set`', () => {
  it.each([
    ['api_key', '   '],
    ['bearer', ' \t '],
    ['bearer', '\n'],
    ['basic', '{"username":"u","password":""}'],
    ['basic', '{"username":"u","password":"   "}'],
    ['basic', '{"username":" ","password":"p"}'],
    ['oauth2', '{"clientId":"","refreshToken":"r"}'],
    ['oauth2', '{"clientId":"  ","refreshToken":"r"}'],
    ['oauth2', '{"clientId":"c","refresh_token":"   "}'],
    ['client_credentials', '{"clientId":"c","clientSecret":" "}'],
  ] as const)('refuses blank %s material %j without quoting it', (type, input) => {
    let message = '';
    try {
      parseMaterial(type, input);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/non-empty/);
  });
});

describe('material already in the store', () => {
  it('gives no credential for blank static material', () => {
    expect(staticCredential('bearer', '  ')).toBeUndefined();
    expect(staticCredential('api_key', '')).toBeUndefined();
    expect(staticCredential('basic', { username: 'u', password: '' })).toBeUndefined();
    expect(staticCredential('basic', { username: 'u', password: 'p' })).toEqual({ kind: 'basic', username: 'u', password: 'p' });
  });
});

describe('agent keys', () => {
  it('never authenticates an empty or blank key, even against a record holding that hash', () => {
    const agents = new Map<string, Agent>([
      ['empty', { id: 'empty', grants: undefined, source: 'store', keySha256: hashAgentKey('') }],
      ['blank', { id: 'blank', grants: undefined, source: 'store', keySha256: hashAgentKey('  ') }],
      ['real', { id: 'real', grants: undefined, source: 'store', keySha256: hashAgentKey('k3y') }],
    ]);
    const table = new AgentTable(agents);
    expect(table.authenticate('empty', '')).toBeUndefined();
    expect(table.authenticate('blank', '  ')).toBeUndefined();
    expect(table.authenticate('real', '')).toBeUndefined();
    expect(table.authenticate('real', 'k3y')?.id).toBe('real');
  });
});

describe('the admin token file', () => {
  it.each([
    ['empty', ''],
    ['whitespace', ' \n\n'],
  ])('refuses an %s data/admin.token with one line that says what to do', async (_what, text) => {
    const path = file(`admin-${text.length}.token`, text);
    await expect(loadOrCreateAdminToken(path)).rejects.toThrow(
      `the admin token file ${path} is empty; delete it and keyway makes a new token at the next start`,
    );
  });

  it('makes a token when the file is missing, and reads it back', async () => {
    const path = join(dir, 'fresh', 'admin.token');
    const made = await loadOrCreateAdminToken(path);
    expect(made.length).toBeGreaterThan(30);
    expect(await loadOrCreateAdminToken(path)).toBe(made);
  });
});

describe('tokens from a token endpoint', () => {
  it('refuses a blank access_token and ignores a blank refresh_token', async () => {
    const answers: Record<string, object> = {
      '/blank-access': { access_token: '   ', expires_in: 60 },
      '/blank-refresh': { access_token: 'a', refresh_token: ' ', expires_in: 60 },
    };
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers[req.url ?? ''] ?? {})));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const endpoint = (path: string) => ({
      tokenUrl: `${base}${path}`,
      clientId: 'c',
      clientSecret: 's',
      clientAuth: 'body' as const,
      bodyFormat: 'form' as const,
      extraParams: {},
    });
    try {
      await expect(requestToken(endpoint('/blank-access'), { grant_type: 'refresh_token', refresh_token: 'r' }, { timeoutMs: 2_000 })).rejects.toMatchObject({
        kind: 'bad_response',
      });
      expect(
        (await requestToken(endpoint('/blank-refresh'), { grant_type: 'refresh_token', refresh_token: 'r' }, { timeoutMs: 2_000 })).refreshToken,
      ).toBeUndefined();
    } finally {
      server.close();
    }
  });
});
