import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { findRunningProxy } from '../../src/running-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';

// keyway env and keyway run ask the running keyway's contain door for its config and the store's
// grants and agents (cli/door-view.ts), so that they neither validate the config nor open the
// store (issue 62: start-up). The CLI runs here without the master key: a store placeholder in its
// output can only have come from the door. Any doubt and the CLI loads its own, as before: shown
// with a config edited after start. Every secret is the CANARY; none may appear in any output.

const PLACEHOLDER = 'keyway-placeholder';
let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startProxy({
    grants: [{ id: 'openai', type: 'bearer', domains: ['api.openai.com'], secret: CANARY }],
    config: {
      grants: {
        anthropic: { type: 'api_key', domains: ['api.anthropic.com'], inject: { header: 'x-api-key', format: '{secret}' }, secret: 'env:ANTHROPIC_SECRET' },
      },
    },
    env: { ANTHROPIC_SECRET: CANARY },
  });
});

afterAll(async () => {
  await proxy?.stop();
});

/** The CLI as a user's shell without keyway's master key or secrets. */
const bare = (args: string[]) => runCli(args, { KEYWAY_HOME: proxy.home });

function placeholders(stdout: string): string[] {
  return Object.entries(JSON.parse(stdout) as Record<string, string>)
    .filter(([, v]) => v === PLACEHOLDER)
    .map(([k]) => k)
    .sort();
}

describe("keyway env and run, answered by the running keyway's door", () => {
  it("give the store grants' placeholders without the master key, and no secret", async () => {
    const r = await bare(['env', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(placeholders(r.stdout)).toEqual(['ANTHROPIC_API_KEY', 'OPENAI_API_KEY']);
    expect(r.stderr).toBe('');
    const run = await bare(['run', '--', 'sh', '-c', 'echo "$OPENAI_API_KEY $HTTPS_PROXY"']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(`${PLACEHOLDER} ${proxy.url}`);
    for (const text of [r.stdout, r.stderr, run.stdout, run.stderr]) expect(text).not.toContain(CANARY);
  });

  it('see a grant added to the store a moment ago (the keyway re-reads a changed store before answering)', async () => {
    const added = await proxy.cli(['grants', 'add', 'groq', '--type', 'bearer', '--domains', 'api.groq.com', '--secret-stdin'], CANARY);
    expect(added.code, added.stderr).toBe(0);
    const r = await bare(['env', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(placeholders(r.stdout)).toContain('GROQ_API_KEY');
  });

  it("answer with no secret: the door's answer holds neither a grant's secret nor a config secret's value", async () => {
    const door = findRunningProxy(join(proxy.home, 'data', 'proxy.json'))?.door;
    expect(door).toBeDefined();
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const sha256 = createHash('sha256').update(readFileSync(file, 'utf8')).digest('hex');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ path: door! });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(`${JSON.stringify({ v: 1, kind: 'client', home: proxy.home, path: file, sha256 })}\n`);
    });
    const parsed = JSON.parse(answer) as { match: boolean; stored: { grants: Array<{ id: string }> } };
    expect(parsed.match).toBe(true);
    expect(parsed.stored.grants.map((g) => g.id).sort()).toEqual(['groq', 'openai']);
    expect(answer).not.toContain(CANARY);
    // Another text (its hash): no config, the asker loads its own.
    const other = await new Promise<string>((resolve, reject) => {
      const socket = connect({ path: door! });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(`${JSON.stringify({ v: 1, kind: 'client', home: proxy.home, path: file, sha256: 'f'.repeat(64) })}\n`);
    });
    expect(JSON.parse(other)).toEqual({ match: false });
  });

  it('read a config edited since the keyway loaded it themselves, as before (the store is then theirs to open)', async () => {
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const before = readFileSync(file, 'utf8');
    try {
      // Not reloaded: the running keyway still runs the old text, so its answer is not taken.
      const config = parse(before) as Record<string, unknown>;
      config['grants'] = {
        ...(config['grants'] as object),
        mistral: { type: 'bearer', domains: ['api.mistral.ai'], secret: 'env:MISTRAL_SECRET' },
      };
      writeFileSync(file, stringify(config));
      const r = await bare(['env', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(placeholders(r.stdout)).toEqual(['ANTHROPIC_API_KEY', 'MISTRAL_API_KEY']);
      expect(r.stderr).toContain('placeholders for grants in the store skipped: no master key');
    } finally {
      writeFileSync(file, before);
    }
  });
});
