// Signed checkpoints: evidence anyone can check with keyway's public key. A real writer rotates and
// prunes a home's log while signing checkpoints; the real CLI prints the public key (with the master
// key) and verifies copies of the logs and exported bundles without it. The attacks: a forger who
// rewrites a line and re-chains every hash after it (which the hash chain alone cannot catch), a
// removed tail, a forged checkpoint, a deleted file, and a tampered bundle.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { appendToFile, checkpointKeyFrom, CheckpointSigner, checkpointsPathFor } from '../../src/audit/checkpoints/index.ts';
import { signCheckpoint } from '../../src/audit/checkpoints/record.ts';
import { AuditWriter, listRotated, type AuditEvent } from '../../src/audit/index.ts';
import { sealLine, serializeEvent } from '../../src/audit/record.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { rawConnect } from '../helpers/clients.ts';
import { makeHome, runCli, startProxy } from '../helpers/keyway.ts';
import { waitFor } from '../helpers/wait.ts';

const START = Date.UTC(2026, 10, 1, 0, 0, 0);
const tsOf = (i: number) => new Date(START + i * 60_000).toISOString();

function event(i: number): AuditEvent {
  return {
    ts: tsOf(i),
    id: `req-${i}`,
    agent: 'bot',
    grant: 'github',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.github.com',
    port: 443,
    path: `/repos/acme/api/issues/${i}`,
    status: 200,
    duration_ms: 12,
    refreshed: false,
    client: '127.0.0.1',
  };
}

/** A copy of the logs folder, for an attack. */
function copyLogs(from: string, to: string): string {
  cpSync(from, to, { recursive: true });
  return to;
}

/** Every line of a log file, and the file written back after `change`, with every hash after the change recomputed (what a forger without the key can do). */
function rechain(file: string, change: (line: Record<string, unknown>, seq: number) => void, prevOfFirst?: string): string {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  let prev = prevOfFirst ?? (JSON.parse(lines[0]!).prev as string);
  const out = lines.map((text) => {
    const { seq, prev: _p, hash: _h, ...rest } = JSON.parse(text) as Record<string, unknown>;
    change(rest, seq as number);
    const sealed = sealLine(serializeEvent(rest as unknown as AuditEvent), seq as number, prev);
    prev = sealed.hash;
    return sealed.line;
  });
  writeFileSync(file, out.join(''));
  return prev;
}

describe('audit checkpoints: verified with the public key alone', () => {
  const masterKey = randomBytes(32).toString('base64');
  let home: string;
  let logs: string;
  let pem: string;
  const withKey = () => ({ KEYWAY_HOME: home, KEYWAY_MASTER_KEY: masterKey });
  // No master key anywhere: a different home that holds nothing, and the copy passed by --dir.
  const withoutKey = () => ({ KEYWAY_HOME: makeHome() });

  beforeAll(async () => {
    home = makeHome();
    logs = join(home, 'logs');
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ audit: { max_bytes: 4000, keep: 3, min_retention: 0 } }));
    const master = Buffer.from(masterKey, 'base64');
    const writer = await AuditWriter.open({
      path: join(logs, 'audit.jsonl'),
      headPath: join(home, 'data', 'audit-head.json'),
      headKey: deriveAuditHeadKey(master),
      maxBytes: 4000,
      keep: 3,
      minRetentionMs: 0,
      checkpoints: new CheckpointSigner({ store: appendToFile(checkpointsPathFor(join(logs, 'audit.jsonl'))), key: checkpointKeyFrom(master), intervalMs: 0 }),
    });
    for (let i = 1; i <= 120; i++) await writer.write(event(i));
    await writer.close();
    const key = await runCli(['audit', 'public-key'], withKey());
    expect(key.code, key.stderr).toBe(0);
    pem = key.stdout;
    writeFileSync(join(home, 'public.pem'), pem);
  });

  const verifyDir = (dir: string, extra: string[] = []) =>
    runCli(['audit', 'verify', '--public-key', join(home, 'public.pem'), '--dir', dir, '--json', ...extra], withoutKey());

  it('public-key prints the Ed25519 public key only; the whole log verifies with it, pruned ranges included', async () => {
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(pem).not.toMatch(/PRIVATE/);
    // Rotation pruned the oldest files: the log starts past seq 1, vouched for by the checkpoint of the last line pruned.
    const rotated = await listRotated(join(logs, 'audit.jsonl'));
    expect(rotated).toHaveLength(3);
    expect(rotated[0]!.firstSeq).toBeGreaterThan(1);
    const r = await verifyDir(logs);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ ok: true, first_seq: rotated[0]!.firstSeq, last_seq: 120, covered_to: 120, problems: [] });
    expect(result.uncovered).toBeUndefined();
    // The same, in words, from the home's own logs.
    const words = await runCli(['audit', 'verify', '--public-key', join(home, 'public.pem')], { KEYWAY_HOME: home });
    expect(words.stdout).toMatch(/verified with key [0-9a-f]{16}: .* signed through seq 120/);
  });

  it('a line rewritten with every later hash recomputed: the chain links, the checkpoint does not match', async () => {
    const copy = copyLogs(logs, join(home, 'attack-rechain'));
    const rotated = await listRotated(join(copy, 'audit.jsonl'));
    // Rewrite the middle rotated file and everything after it, as a forger can (SHA-256 needs no key).
    const files = [...rotated.slice(1).map((f) => f.path), join(copy, 'audit.jsonl')];
    let prev: string | undefined;
    files.forEach((file, i) => {
      prev = rechain(
        file,
        (line, seq) => {
          if (i === 0 && seq === rotated[1]!.firstSeq + 1) line['path'] = '/repos/acme/api/issues/innocent';
        },
        prev,
      );
    });
    const r = await verifyDir(copy);
    expect(readFileSync(files[0]!, 'utf8')).toContain('/repos/acme/api/issues/innocent');
    expect(r.code, r.stdout).toBe(1);
    const result = JSON.parse(r.stdout);
    expect(result.ok).toBe(false);
    expect(result.problems[0].reason).toMatch(/is not the line keyway signed at .*: it was changed or replaced|does not follow the line the checkpoint/);
  });

  it('a removed tail, a forged checkpoint, and a deleted middle file are each named', async () => {
    const tail = copyLogs(logs, join(home, 'attack-tail'));
    const live = join(tail, 'audit.jsonl');
    const kept = readFileSync(live, 'utf8').split('\n').filter(Boolean);
    writeFileSync(live, `${kept.slice(0, -3).join('\n')}\n`);
    const cut = JSON.parse((await verifyDir(tail)).stdout);
    expect(cut.problems.map((p: { reason: string }) => p.reason)).toContainEqual(
      expect.stringMatching(/tail removed: a checkpoint signed at .* vouches for seq 120, and the log ends at seq 117/),
    );

    const forged = copyLogs(logs, join(home, 'attack-forged'));
    const other = checkpointKeyFrom(randomBytes(32));
    writeFileSync(
      checkpointsPathFor(join(forged, 'audit.jsonl')),
      `${JSON.stringify(signCheckpoint({ seq: 121, hash: 'a'.repeat(64) }, other, new Date().toISOString()))}\n`,
      { flag: 'a' },
    );
    const fake = JSON.parse((await verifyDir(forged)).stdout);
    expect(fake.ok).toBe(false);
    expect(fake.problems[0].reason).toMatch(/checkpoint for seq 121: its signature does not verify with this public key \(signed by key [0-9a-f]{16}/);

    const gap = copyLogs(logs, join(home, 'attack-gap'));
    const middle = (await listRotated(join(gap, 'audit.jsonl')))[1]!;
    writeFileSync(middle.path, '');
    const holed = JSON.parse((await verifyDir(gap)).stdout);
    expect(holed.ok).toBe(false);
    expect(holed.problems.map((p: { reason: string }) => p.reason)).toContainEqual(expect.stringMatching(/seq jumps from \d+ to \d+/));
  });

  it('lines after the last checkpoint are reported as not covered yet: they fail the check unless allowed (a live log)', async () => {
    const copy = copyLogs(logs, join(home, 'unsigned-tail'));
    const master = Buffer.from(masterKey, 'base64');
    const writer = await AuditWriter.open({
      path: join(copy, 'audit.jsonl'),
      headPath: join(home, 'unsigned-head.json'),
      headKey: deriveAuditHeadKey(master),
      maxBytes: 0,
    });
    for (let i = 121; i <= 123; i++) await writer.write(event(i));
    await writer.close();
    const strict = await verifyDir(copy);
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout)).toMatchObject({ ok: false, problems: [], covered_to: 120, last_seq: 123, uncovered: { first_seq: 121, last_seq: 123 } });
    const allowed = await verifyDir(copy, ['--allow-uncovered']);
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ ok: true, uncovered: { first_seq: 121, last_seq: 123 } });
  });

  it('export writes a bundle of a window that verifies elsewhere; a tampered bundle does not', async () => {
    const out = join(home, 'bundle.json');
    const exported = await runCli(['audit', 'export', '--since', tsOf(95), '--until', tsOf(100), '--out', out, '--json'], withKey());
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ window: { first_seq: 95, last_seq: 100, lines: 6 } });
    const elsewhere = await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(home, 'public.pem'), '--json'], withoutKey());
    expect(elsewhere.code, elsewhere.stdout + elsewhere.stderr).toBe(0);
    expect(JSON.parse(elsewhere.stdout)).toMatchObject({ ok: true });
    // Without a key given, the bundle's own is used, and its id is said so it can be compared.
    const own = await runCli(['audit', 'verify', '--bundle', out], withoutKey());
    expect(own.code).toBe(0);
    expect(own.stderr).toMatch(/checked with the key the bundle carries \(key id [0-9a-f]{16}\)/);

    const bundle = JSON.parse(readFileSync(out, 'utf8'));
    const lines = bundle.lines as string[];
    const i = lines.findIndex((l) => JSON.parse(l).seq === 97);
    const edited = JSON.parse(lines[i]!);
    edited.status = 500;
    lines[i] = JSON.stringify(edited);
    writeFileSync(join(home, 'tampered.json'), JSON.stringify(bundle));
    const tampered = await runCli(['audit', 'verify', '--bundle', join(home, 'tampered.json'), '--public-key', join(home, 'public.pem')], withoutKey());
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/lines: line \d+: edited: its content does not match its hash/);
    // And a bundle checked with another keyway's key fails, whatever key it carries.
    writeFileSync(join(home, 'other.pem'), checkpointKeyFrom(randomBytes(32)).publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const otherKey = await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(home, 'other.pem')], withoutKey());
    expect(otherKey.code).toBe(1);
    // Cut short by whoever passed it on: its last lines and the checkpoint that covered them dropped.
    const cut = JSON.parse(readFileSync(out, 'utf8'));
    cut.lines = (cut.lines as string[]).slice(0, -2);
    cut.checkpoints = (cut.checkpoints as string[]).filter((c) => JSON.parse(c).seq <= JSON.parse(cut.lines.at(-1)).seq);
    writeFileSync(join(home, 'cut.json'), JSON.stringify(cut));
    const short = await runCli(['audit', 'verify', '--bundle', join(home, 'cut.json'), '--public-key', join(home, 'public.pem'), '--json'], withoutKey());
    expect(short.code).toBe(1);
    expect(JSON.parse(short.stdout).ok).toBe(false);
  });

  it('export of recent lines no checkpoint covers yet signs one first, after the log verifies with the master key', async () => {
    const home2 = makeHome();
    const master = randomBytes(32);
    const env = { KEYWAY_HOME: home2, KEYWAY_MASTER_KEY: master.toString('base64') };
    const writer = await AuditWriter.open({
      path: join(home2, 'logs', 'audit.jsonl'),
      headPath: join(home2, 'data', 'audit-head.json'),
      headKey: deriveAuditHeadKey(master),
    });
    for (let i = 1; i <= 5; i++) await writer.write(event(i));
    await writer.close();
    expect(readdirSync(join(home2, 'logs'))).not.toContain('audit.checkpoints.jsonl');
    const out = join(home2, 'b.json');
    const r = await runCli(['audit', 'export', '--since', tsOf(2), '--out', out], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/a checkpoint was signed for the newest of them/);
    expect(
      readFileSync(join(home2, 'logs', 'audit.checkpoints.jsonl'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(1);
    writeFileSync(join(home2, 'pub.pem'), checkpointKeyFrom(master).publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect((await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(home2, 'pub.pem')], withoutKey())).code).toBe(0);
    // The whole log rewritten from its first line and the checkpoint file deleted: nothing is vouched for.
    const copy = copyLogs(join(home2, 'logs'), join(home2, 'rewritten'));
    rechain(join(copy, 'audit.jsonl'), (line, seq) => {
      if (seq === 3) line['status'] = 500;
    });
    writeFileSync(join(copy, 'audit.checkpoints.jsonl'), '');
    const rewritten = await runCli(['audit', 'verify', '--public-key', join(home2, 'pub.pem'), '--dir', copy, '--json'], withoutKey());
    expect(rewritten.code).toBe(1);
    expect(JSON.parse(rewritten.stdout)).toMatchObject({ ok: false, covered_to: 0, uncovered: { first_seq: 1, last_seq: 5 } });
  });
});

describe('audit checkpoints: a running keyway', () => {
  it('signs the head at stop; the log verifies with its public key', async () => {
    const proxy = await startProxy();
    // A few audit lines: CONNECTs keyway refuses (a malformed target).
    for (let i = 0; i < 3; i++) expect((await rawConnect(proxy.port, `bad target ${i}`)).status).toBe(400);
    await waitFor(() => (proxy.auditLines().length >= 3 ? true : undefined), 'three audit lines');
    await proxy.stop();
    const checkpoints = readFileSync(join(proxy.home, 'logs', 'audit.checkpoints.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(checkpoints.length).toBeGreaterThanOrEqual(1);
    const pub = await proxy.cli(['audit', 'public-key']);
    writeFileSync(join(proxy.home, 'pub.pem'), pub.stdout);
    const r = await runCli(['audit', 'verify', '--public-key', join(proxy.home, 'pub.pem'), '--dir', join(proxy.home, 'logs'), '--json'], {
      KEYWAY_HOME: makeHome(),
    });
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, covered_to: proxy.auditLines().length });
    expect(JSON.parse(r.stdout).uncovered).toBeUndefined();
  });
});
