import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { PROVIDER_PRESETS } from '../../src/credentials/providers/presets.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cliCommand, makeHome, runCli } from '../helpers/keyway.ts';

// Mistakes a person makes at the command line, each caught when it is made with a message that
// says what to do. The real CLI runs in a child process on a temp home; no proxy is needed here.

let home: string;
let env: Record<string, string>;
const cli = (args: string[], stdin?: string) => runCli(args, env, stdin);

beforeEach(() => {
  home = makeHome();
  env = { KEYWAY_HOME: home, HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
});

async function addGrant(id: string, domains: string, secret = CANARY) {
  const r = await cli(['grants', 'add', id, '--type', 'bearer', '--domains', domains, '--secret-stdin'], secret);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe('agents add', () => {
  it('refuses a grant that does not exist, naming the known ones', async () => {
    await addGrant('github', 'api.github.com');
    const r = await cli(['agents', 'add', 'a1', '--grants', 'github,nosuchgrant']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"nosuchgrant"');
    expect(r.stderr).toContain('known grants: github');
    expect((await cli(['agents', 'list', '--json'])).stdout.trim()).toBe('[]');
  });

  it('says when the first agent ends anonymous access, and only then', async () => {
    await addGrant('github', 'api.github.com');
    const first = await cli(['agents', 'add', 'a1', '--grants', 'github']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/anonymous access has ended/);
    expect(first.stderr).toContain('keyway agents add');
    const second = await cli(['agents', 'add', 'a2']);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toMatch(/anonymous/);
  });
});

describe('grants', () => {
  it('warns at add time when domains overlap another grant, and says how requests choose', async () => {
    await addGrant('gh-personal', 'api.github.com');
    const r = await addGrant('gh-work', '*.github.com');
    expect(r.stderr).toContain('overlaps grant "gh-personal" on api.github.com');
    expect(r.stderr).toContain('X-Keyway-Grant: gh-work');
    expect(r.stderr).toContain('keyway agents add ID --grants gh-work');
    const apart = await addGrant('gitlab', 'gitlab.com');
    expect(apart.stderr).toBe('');
    // A grant made from a provider preset by secrets set is checked the same way.
    const preset = await cli(['secrets', 'set', 'github', '--stdin'], JSON.stringify({ refreshToken: CANARY }));
    expect(preset.code, preset.stderr).toBe(0);
    expect(preset.stderr).toContain('grant "github" overlaps grant "gh-personal"');
    expect(preset.stdout + preset.stderr).not.toContain(CANARY);
  });

  it('lists a grant with no secret as "no secret" with the command to set it', async () => {
    const added = await cli(['grants', 'add', 'openai', '--type', 'bearer', '--domains', 'api.openai.com']);
    expect(added.code).toBe(0);
    const list = await cli(['grants', 'list']);
    const row = list.stdout.split('\n').find((l) => l.startsWith('openai'));
    expect(row).toContain('no secret');
    expect(row).not.toContain('active');
    expect(list.stdout).toContain('keyway secrets set openai --stdin');
    await cli(['secrets', 'set', 'openai', '--stdin'], CANARY);
    const after = await cli(['grants', 'list']);
    expect(after.stdout.split('\n').find((l) => l.startsWith('openai'))).toContain('active');
    expect(after.stdout).not.toContain('no secret');
    expect(after.stdout + after.stderr).not.toContain(CANARY);
  });

  it('shows a grant with readable labels', async () => {
    await addGrant('github', 'api.github.com');
    const r = await cli(['grants', 'show', 'github']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Grant: +github$/m);
    expect(r.stdout).toMatch(/^Injected as: +header Authorization: Bearer \{secret\}$/m);
    expect(r.stdout).toMatch(/^Secret: +set \(never shown\)$/m);
    expect(r.stdout).toMatch(/^Last used: +never$/m);
    expect(r.stdout).not.toMatch(/token_expires_at|last_used_at|allow_http/);
    expect(r.stdout).not.toContain(CANARY);
  });

  it('changes domains and injection with grants set, keeping the secret', async () => {
    await cli(
      ['grants', 'add', 'svc', '--type', 'api_key', '--domains', 'api.svc.test', '--header', 'X-Api-Key', '--format', '{secret}', '--secret-stdin'],
      CANARY,
    );
    const r = await cli(['grants', 'set', 'svc', '--domains', 'api.svc.test,up.svc.test', '--header', 'Authorization', '--format', 'Token {secret}', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const row = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(row['domains']).toEqual(['api.svc.test', 'up.svc.test']);
    expect(row['inject']).toBe('header Authorization: Token {secret}');
    expect(row['secret']).toBe('set');
    const q = await cli(['grants', 'set', 'svc', '--query', 'key', '--json']);
    expect((JSON.parse(q.stdout) as Record<string, unknown>)['inject']).toBe('query key={secret}');
    expect((await cli(['grants', 'set', 'svc'])).code).toBe(2);
    expect((await cli(['grants', 'set', 'svc', '--format', 'no placeholder'])).stderr).toContain('{secret}');
    expect((await cli(['grants', 'set', 'nope', '--domains', 'a.test'])).stderr).toContain('no grant "nope"');
    // set cannot widen a grant past what add allows: a wildcard over a public suffix is refused.
    const broad = await cli(['grants', 'set', 'svc', '--domains', '*.com']);
    expect(broad.code).toBe(2);
    expect(broad.stderr).toContain('broader than one registrable domain');
    expect(JSON.parse((await cli(['grants', 'show', 'svc', '--json'])).stdout)).toMatchObject({ domains: ['api.svc.test', 'up.svc.test'], secret: 'set' });
    expect(r.stdout + q.stdout).not.toContain(CANARY);
  });
});

describe('basic secrets', () => {
  it('accept JSON and user:password on the command line', async () => {
    for (const [id, input] of [
      ['b-json', JSON.stringify({ username: 'u1', password: CANARY })],
      ['b-pair', `u2:${CANARY}:with-colon`],
    ] as const) {
      const added = await cli(['grants', 'add', id, '--type', 'basic', '--domains', `${id}.example.test`, '--secret-stdin'], input);
      expect(added.code, added.stderr).toBe(0);
      expect(added.stdout).toContain('secret set');
      expect(added.stdout + added.stderr).not.toContain(CANARY);
    }
    const bad = await cli(['secrets', 'set', 'b-pair', '--stdin'], `no-colon-${CANARY}`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('username:password');
    expect(bad.stderr).not.toContain(CANARY);
  });
});

describe('unknown subcommands', () => {
  it('say so, with the valid ones', async () => {
    const g = await cli(['grants', 'frob']);
    expect(g.code).toBe(2);
    expect(g.stderr).toContain('unknown subcommand "frob"');
    expect(g.stderr).toContain('list, show, add, set, rm');
    const a = await cli(['agents', 'frob']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('rotate-key');
    const au = await cli(['audit', 'frob']);
    expect(au.code).toBe(2);
    expect(au.stderr).toContain('audit: unknown subcommand "frob" (expected one of: tail, query, verify, public-key, export)');
  });

  it('name the command once, and suggest the nearest subcommand, at every level', async () => {
    for (const [args, line] of [
      [['grants', 'ad'], 'keyway grants: unknown subcommand "ad": did you mean "add"? (expected one of: list, show, add, set, rm)'],
      [['audit', 'verfy'], 'keyway audit: unknown subcommand "verfy": did you mean "verify"?'],
      [['secrets', 'st'], 'keyway secrets: unknown subcommand "st": did you mean "set"?'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(line);
      expect(r.stderr).not.toMatch(/(\w+): \1:/);
    }
  });
});

describe('unknown options and commands', () => {
  it("get keyway's own one line, never Node's parseArgs text, with the nearest option when one is close", async () => {
    const cases: Array<[string[], string]> = [
      [['status', '--bogus'], 'keyway status: unknown option "--bogus" (see --help)'],
      [['grants', 'list', '--hmoe', home], 'keyway grants: unknown option "--hmoe": did you mean "--home"? (see --help)'],
      [['fetch', '--agnet=bot', 'https://api.example.test/'], 'keyway fetch: unknown option "--agnet": did you mean "--agent"? (see --help)'],
      [['fetch', 'https://api.example.test/', '-X'], 'keyway fetch: -X (--request) needs a value'],
      [['agents', 'add', 'bot', '--grants'], 'keyway agents: --grants needs a value'],
      [['status', '--json=yes'], 'keyway status: --json takes no value'],
      [['audit', 'tail', '-z'], 'keyway audit: unknown option "-z" (see --help)'],
    ];
    for (const [args, line] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
      expect(r.stderr).not.toMatch(/positional argument|<value>|argument missing/);
    }
  });

  it('says "did you mean" for a mistyped command, and only when one is close', async () => {
    const cases: Array<[string, string]> = [
      ['stauts', 'keyway: unknown command "stauts": did you mean "keyway status"? (see keyway --help)'],
      ['agent', 'keyway: unknown command "agent": did you mean "keyway agents"? (see keyway --help)'],
      ['sercets', 'keyway: unknown command "sercets": did you mean "keyway secrets"? (see keyway --help)'],
      ['xyzzy', 'keyway: unknown command "xyzzy" (see keyway --help)'],
    ];
    for (const [name, line] of cases) {
      const r = await cli([name]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toBe(`${line}\n`);
    }
  });
});

describe('init', () => {
  it('makes logs/ for the audit log, 0700 like data/, and says where it is', async () => {
    const r = await cli(['init', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const logs = join(home, 'logs');
    expect(JSON.parse(r.stdout)).toMatchObject({ logs });
    expect(statSync(logs).isDirectory()).toBe(true);
    expect(statSync(logs).mode & 0o777).toBe(0o700);
    const again = await cli(['init']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`logs   ${logs}\n`);
  });
});

describe('connect --help', () => {
  it("lists every provider connect accepts: the presets and the config's own", async () => {
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), 'providers:\n  acme-helpdesk:\n    token_url: https://helpdesk.acme.test/token\n');
    const r = await cli(['connect', '--help']);
    expect(r.code).toBe(0);
    const listed = /^Built-in providers: (.*)\.$/m.exec(r.stdout)?.[1]?.split(', ');
    expect(listed).toEqual(Object.keys(PROVIDER_PRESETS).sort());
    expect(r.stdout).toMatch(/^From the config: acme-helpdesk\.$/m);
    expect(r.stdout).toMatch(/^With --device \(device code\): .*github/m);
    // A broken config still shows the presets, and names the problem.
    writeFileSync(join(home, 'config', 'keyway.yaml'), 'providers:\n  acme-helpdesk:\n    token_ur: x\n');
    const broken = await cli(['connect', '--help']);
    expect(broken.code).toBe(0);
    expect(broken.stdout).toContain('Built-in providers: ');
    expect(broken.stdout).toContain('did you mean token_url?');
  });
});

describe('a closed output pipe', () => {
  it('ends `keyway audit query` quietly when its reader stops after one line', async () => {
    mkdirSync(join(home, 'logs'), { recursive: true });
    const line = (i: number) =>
      JSON.stringify({
        ts: new Date(0).toISOString(),
        id: `r${i}`,
        agent: null,
        grant: 'github',
        decision: 'inject',
        code: null,
        method: 'GET',
        host: 'api.github.com',
        port: 443,
        path: `/repos/${'x'.repeat(150)}/${i}`,
        status: 200,
        duration_ms: 1,
        refreshed: false,
        client: '127.0.0.1',
        seq: i,
        prev: '0'.repeat(64),
        hash: 'a'.repeat(64),
      });
    // About 2 MB: far more than a pipe holds, so the writer meets the closed pipe.
    writeFileSync(join(home, 'logs', 'audit.jsonl'), `${Array.from({ length: 8_000 }, (_, i) => line(i)).join('\n')}\n`);
    const child = spawn(...cliCommand(['audit', 'query']), { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const firstLine = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error('no output')), 20_000);
      child.stdout.on('data', (c: Buffer) => {
        seen += c.toString();
        if (seen.includes('\n')) {
          clearTimeout(timer);
          child.stdout.destroy(); // what `head -1` does: read one line, close the pipe
          resolve(seen.split('\n')[0]!);
        }
      });
    });
    expect(firstLine).toContain('api.github.com');
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
