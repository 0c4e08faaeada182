// Changes made from the command line are audited as the admin API's are (issue 23): one `admin` line
// per write, with the API's action name, the actor (KEYWAY_ACTOR, else OS user@host) and the names of
// what changed, never a value; in the same hash chain as a running proxy's lines (the CLI appends
// under the same lock), and with no proxy running at all.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLine } from '../../src/audit/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, onePerRequest, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SECRET = `${CANARY}-cli-audit`;

/** One entry per request: an injected request's write-ahead line is left out once its outcome is there. */
function auditLines(home: string): AuditLine[] {
  return onePerRequest(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')) as unknown as AuditLine[];
}

describe('CLI writes in the audit chain, with no proxy running', () => {
  const home = makeHome();
  const env = { KEYWAY_HOME: home, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), KEYWAY_ACTOR: 'ops-alice' };
  const outputs: string[] = [];
  async function cli(args: string[], stdin?: string, extra: Record<string, string> = {}) {
    const result = await runCli(args, { ...env, ...extra }, stdin);
    outputs.push(result.stdout, result.stderr);
    return result;
  }

  it('writes one admin line per change, named as the admin API names it, with the actor and the fields, never the secret', async () => {
    const steps: Array<[string[], string | undefined]> = [
      [['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin', '--label', 'team=ops'], SECRET],
      [['secrets', 'set', 'api', '--stdin'], `${SECRET}-2`],
      [['grants', 'set', 'api', '--domains', 'api.example.test,other.example.test', '--no-allow-range'], undefined],
      [['agents', 'add', 'bot', '--grants', 'api', '--lease-ttl', '1h'], undefined],
      [['agents', 'lease', 'bot', 'api', '--ttl', '10m'], undefined],
      [['agents', 'revoke-lease', 'bot', 'api'], undefined],
      [['agents', 'rotate-key', 'bot'], undefined],
      [['agents', 'rm', 'bot'], undefined],
      [['store', 'copy', '--to', join(home, 'copy.json')], undefined],
      [['grants', 'rm', 'api'], undefined],
    ];
    for (const [args, stdin] of steps) {
      const result = await cli(args, stdin);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
    }
    const admin = auditLines(home).filter((l) => l.decision === 'admin');
    expect(admin.map((l) => [l.action, l.grant, l.agent, l.changed ?? null])).toEqual([
      ['grants.create', 'api', null, 'type,domains,labels,secret'],
      ['grants.set_secret', 'api', null, 'secret'],
      ['grants.update', 'api', null, 'domains,allow_range'],
      ['agents.create', null, 'bot', 'key,grants,lease_ttl'],
      ['agents.lease', 'api', 'bot', 'lease'],
      ['agents.revoke_lease', 'api', 'bot', 'lease'],
      ['agents.rotate_key', null, 'bot', 'key'],
      ['agents.delete', null, 'bot', null],
      ['store.copy', null, null, 'records'],
      ['grants.delete', 'api', null, null],
    ]);
    for (const line of admin) {
      expect(line).toMatchObject({ actor: 'ops-alice', client: 'cli', code: null, method: null, path: null });
    }
    const verify = await cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const tail = await cli(['audit', 'tail', '-n', '3']);
    expect(tail.stdout).toContain('grants.delete');
    expect(tail.stdout).toContain('ops-alice');
  });

  it('records a refused write with its code and reason, and names the OS user when KEYWAY_ACTOR is unset', async () => {
    const { KEYWAY_ACTOR: _, ...noActor } = env;
    const refused = await runCli(['grants', 'set', 'nosuch', '--domains', 'x.example.test'], noActor);
    outputs.push(refused.stdout, refused.stderr);
    expect(refused.code).not.toBe(0);
    const last = auditLines(home).at(-1)!;
    expect(last).toMatchObject({ decision: 'admin', action: 'grants.update', grant: 'nosuch', actor: `${userInfo().username}@${hostname()}` });
    expect(last.code).toBe('not_found');
    expect(last.message).toMatch(/nosuch/);
  });

  it('a refused `secrets set` (bad input) is audited as refused, with no `changed`: it changed nothing', async () => {
    expect((await cli(['grants', 'add', 'kept', '--type', 'bearer', '--domains', 'kept.example.test', '--secret-stdin'], SECRET)).code).toBe(0);
    const refused = await cli(['secrets', 'set', 'kept', '--stdin'], '   \n');
    expect(refused.code).not.toBe(0);
    const last = auditLines(home).at(-1)!;
    expect(last).toMatchObject({ decision: 'admin', action: 'grants.set_secret', grant: 'kept' });
    expect(last.code).not.toBeNull();
    expect(last.changed).toBeUndefined();
    expect((await cli(['grants', 'rm', 'kept'])).code).toBe(0);
  });

  it('strips control characters from KEYWAY_ACTOR and bounds it', async () => {
    const result = await cli(['agents', 'add', 'bot2'], undefined, { KEYWAY_ACTOR: `eve\n{"forged":true}\u001b[2J${'x'.repeat(300)}` });
    expect(result.code, result.stderr).toBe(0);
    const actor = auditLines(home).at(-1)!.actor!;
    expect(actor.startsWith('eve{"forged":true}[2Jxxx')).toBe(true);
    expect(actor.includes('\n') || actor.includes('\u001b')).toBe(false);
    expect(actor.length).toBeLessThanOrEqual(128);
  });

  it('changes nothing when the audit log cannot take its line (fails closed, as the proxy does)', async () => {
    const other = makeHome();
    const otherEnv = { ...env, KEYWAY_HOME: other };
    expect((await runCli(['grants', 'add', 'first', '--type', 'bearer', '--domains', 'a.example.test'], otherEnv)).code).toBe(0);
    // The live log replaced by a folder: it cannot be opened for append.
    const live = join(other, 'logs', 'audit.jsonl');
    renameSync(live, `${live}.moved`);
    mkdirSync(live);
    const refused = await runCli(['grants', 'add', 'second', '--type', 'bearer', '--domains', 'b.example.test'], otherEnv);
    outputs.push(refused.stdout, refused.stderr);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/the audit log cannot be written .*nothing was changed/);
    const listed = await runCli(['grants', 'list', '--json'], otherEnv);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((g) => g.id)).toEqual(['first']);
  });

  afterAll(() => {
    const text = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
    for (const out of [text, ...outputs]) expect(findLeak(out, SECRET), 'the canary in the audit log or an output').toBeUndefined();
  });
});

describe('CLI writes beside a running proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function get(): Promise<number> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher });
      await res.body.text();
      return res.statusCode;
    } finally {
      await dispatcher.close();
    }
  }

  it("interleaves its lines with the proxy's in one chain that verifies", async () => {
    // Traffic runs the whole time the CLI writes: four clients, each sending until the CLI is done.
    let writing = true;
    let sent = 0;
    const client = async () => {
      while (writing && sent < 2_000) {
        sent++;
        expect(await get()).toBe(200);
      }
    };
    const traffic = Promise.all([client(), client(), client(), client()]);
    const changes = [];
    // Grants for other hosts: a change that leaves the traffic's own requests as they were.
    for (let i = 0; i < 4; i++) changes.push(await proxy.cli(['grants', 'add', `g${i}`, '--type', 'bearer', '--domains', `g${i}.example.test`], undefined));
    writing = false;
    await traffic;
    for (const c of changes) expect(c.code, c.stderr).toBe(0);
    // The proxy's lines reach the file a few ms after their responses.
    let lines: AuditLine[] = [];
    for (let tries = 0; tries < 50; tries++) {
      lines = auditLines(proxy.home);
      if (lines.filter((l) => l.decision === 'inject').length >= sent) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(lines.filter((l) => l.decision === 'inject')).toHaveLength(sent);
    const created = lines.filter((l) => l.action === 'grants.create');
    expect(created.map((l) => l.grant)).toEqual(['g0', 'g1', 'g2', 'g3']);
    // Proxy lines on both sides of the CLI's: the two writers really took turns on one chain.
    expect(lines.slice(0, lines.indexOf(created[0]!)).some((l) => l.decision === 'inject')).toBe(true);
    expect(lines.slice(lines.indexOf(created[3]!)).some((l) => l.decision === 'inject')).toBe(true);
    // The chain has no gap: every seq is there (a write-ahead line and its outcome, each its own seq).
    const chain = readFileSync(join(proxy.home, 'logs', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as AuditLine).seq);
    expect(chain).toEqual(chain.map((_, i) => i + 1));
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

describe('keyway audit verify where there is no log to verify (issue 48)', () => {
  it('a missing folder or log is exit 1 naming it; an empty log fails unless --allow-empty', async () => {
    const env = { KEYWAY_HOME: makeHome(), KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    // A mistyped home: no logs/ at all.
    const mistyped = await runCli(['audit', 'verify'], env);
    expect(mistyped.code).toBe(1);
    expect(mistyped.stderr).toMatch(/no audit log in .*logs: no such folder/);
    expect(mistyped.stdout).not.toContain('intact');
    // A --dir that is not there, for the check without the master key.
    const publicKey = join(env.KEYWAY_HOME, 'audit-public.pem');
    const key = await runCli(['audit', 'public-key'], env);
    expect(key.code, key.stderr).toBe(0);
    writeFileSync(publicKey, key.stdout);
    const nodir = await runCli(['audit', 'verify', '--public-key', publicKey, '--dir', '/nonexistent'], env);
    expect(nodir.code).toBe(1);
    expect(nodir.stderr).toContain('no audit log in /nonexistent');
    expect(nodir.stdout).not.toMatch(/verified/);
    // A folder with an empty log: refused, then accepted when asked.
    mkdirSync(join(env.KEYWAY_HOME, 'logs'), { recursive: true });
    writeFileSync(join(env.KEYWAY_HOME, 'logs', 'audit.jsonl'), '');
    const empty = await runCli(['audit', 'verify'], env);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('has no lines: nothing was verified (--allow-empty accepts an empty log)');
    const allowed = await runCli(['audit', 'verify', '--allow-empty'], env);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toContain('audit log intact: 0 lines');
  });
});
