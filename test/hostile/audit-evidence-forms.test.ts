// Evidence that verifies only lines keyway wrote. An agent (or whoever holds the log) re-spells a line
// so that it still parses to the same record, and so still hashes the same: a top-level `__proto__`
// member, a duplicate key placed before the real one (a reader that keeps the first sees "mallory"),
// a value spelled with an escape keyway never writes. None changes a hash, so only the check that
// a line is byte for byte keyway's own serialisation can catch them: master-key verify, public-key
// verify and bundle verify must each refuse all three, and pass the untouched copy. And a bundle's
// window relabelled to another day must fail, not be printed as what the bundle covers.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { appendToFile, checkpointKeyFrom, CheckpointSigner, checkpointsPathFor } from '../../src/audit/checkpoints/index.ts';
import { AuditWriter, type AuditEvent } from '../../src/audit/index.ts';
import { expectedHash, parseLine } from '../../src/audit/record.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { makeHome, runCli } from '../helpers/keyway.ts';

const START = Date.UTC(2026, 10, 1, 9, 0, 0);
const tsOf = (i: number) => new Date(START + i * 60_000).toISOString();
const LINES = 10;
const TARGET = 5;

function event(i: number): AuditEvent {
  return {
    ts: tsOf(i),
    id: `req-${i}`,
    agent: 'claude',
    grant: 'github',
    decision: 'inject',
    code: null,
    method: 'POST',
    host: 'api.github.com',
    port: 443,
    path: `/repos/acme/api/issues/${i}`,
    status: 201,
    duration_ms: 12,
    refreshed: false,
    client: '127.0.0.1',
  };
}

/** Re-spellings of one line that parse to the same record (so keep its hash). */
const FORMS: Array<{ name: string; respell(line: string): string }> = [
  { name: 'a top-level "__proto__" member', respell: (l) => l.replace(',"seq":', ',"__proto__":{"agent":"mallory"},"seq":') },
  { name: 'a duplicate key before the real one', respell: (l) => l.replace('{"ts":', '{"agent":"mallory","ts":') },
  { name: 'a value re-spelled with an escape (\\u0061)', respell: (l) => l.replace('"host":"api.github.com"', '"host":"\\u0061pi.github.com"') },
];

/** The line at `seq` of a log file re-spelled; asserts its hash still matches (only the form can tell). */
function respellLine(file: string, seq: number, respell: (line: string) => string): void {
  const lines = readFileSync(file, 'utf8').split('\n');
  const at = lines.findIndex((l) => l !== '' && JSON.parse(l).seq === seq);
  const forged = respell(lines[at]!);
  expect(forged).not.toBe(lines[at]);
  const parsed = parseLine(forged);
  expect(parsed).not.toBeNull();
  expect(expectedHash(parsed!)).toBe(parsed!.hash);
  lines[at] = forged;
  writeFileSync(file, lines.join('\n'));
}

describe('hostile: audit lines re-spelled so they hash the same', () => {
  const masterKey = randomBytes(32).toString('base64');
  let home: string;
  let pem: string;
  let bundle: string;
  const withKey = (h: string) => ({ KEYWAY_HOME: h, KEYWAY_MASTER_KEY: masterKey });
  const withoutKey = () => ({ KEYWAY_HOME: makeHome() });
  const copyHome = (name: string) => {
    const to = join(home, '..', `${name}-${randomBytes(4).toString('hex')}`);
    cpSync(home, to, { recursive: true });
    return to;
  };
  const masterVerify = (h: string) => runCli(['audit', 'verify', '--json'], withKey(h));
  const publicVerify = (h: string) => runCli(['audit', 'verify', '--public-key', pem, '--dir', join(h, 'logs'), '--json'], withoutKey());
  const bundleVerify = (file: string) => runCli(['audit', 'verify', '--bundle', file, '--public-key', pem, '--json'], withoutKey());

  beforeAll(async () => {
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ audit: { min_retention: 0 } }));
    const master = Buffer.from(masterKey, 'base64');
    const auditPath = join(home, 'logs', 'audit.jsonl');
    const writer = await AuditWriter.open({
      path: auditPath,
      headPath: join(home, 'data', 'audit-head.json'),
      headKey: deriveAuditHeadKey(master),
      checkpoints: new CheckpointSigner({ store: appendToFile(checkpointsPathFor(auditPath)), key: checkpointKeyFrom(master), intervalMs: 0 }),
    });
    for (let i = 1; i <= LINES; i++) await writer.write(event(i));
    await writer.close();
    const key = await runCli(['audit', 'public-key'], withKey(home));
    expect(key.code, key.stderr).toBe(0);
    pem = join(home, 'public.pem');
    writeFileSync(pem, key.stdout);
    bundle = join(home, 'bundle.json');
    const exported = await runCli(['audit', 'export', '--since', tsOf(3), '--until', tsOf(7), '--out', bundle], withKey(home));
    expect(exported.code, exported.stderr).toBe(0);
  });

  it('control: the untouched log verifies with the master key and with the public key, and the untouched bundle verifies', async () => {
    const copy = copyHome('control');
    const master = await masterVerify(copy);
    expect(master.code, master.stdout + master.stderr).toBe(0);
    const pub = await publicVerify(copy);
    expect(pub.code, pub.stdout + pub.stderr).toBe(0);
    const b = await bundleVerify(bundle);
    expect(b.code, b.stdout + b.stderr).toBe(0);
  });

  for (const form of FORMS) {
    it(`${form.name}: master-key verify, public-key verify and bundle verify each refuse it, naming the line`, async () => {
      const copy = copyHome('respelled');
      respellLine(join(copy, 'logs', 'audit.jsonl'), TARGET, form.respell);

      const master = await masterVerify(copy);
      expect(master.code, master.stdout).toBe(1);
      const masterResult = JSON.parse(master.stdout);
      expect(masterResult.problems).toEqual([{ line: TARGET, reason: expect.stringMatching(new RegExp(`seq ${TARGET} is not keyway's canonical form`)) }]);

      const pub = await publicVerify(copy);
      expect(pub.code, pub.stdout).toBe(1);
      const pubResult = JSON.parse(pub.stdout);
      expect(pubResult.ok).toBe(false);
      expect(pubResult.problems).toEqual([{ line: TARGET, reason: expect.stringMatching(new RegExp(`seq ${TARGET} is not keyway's canonical form`)) }]);

      const b = JSON.parse(readFileSync(bundle, 'utf8'));
      const lines = b.lines as string[];
      const at = lines.findIndex((l) => JSON.parse(l).seq === TARGET);
      lines[at] = form.respell(lines[at]!);
      const forged = join(copy, 'bundle.json');
      writeFileSync(forged, JSON.stringify(b));
      const bv = await bundleVerify(forged);
      expect(bv.code, bv.stdout).toBe(1);
      const bundleResult = JSON.parse(bv.stdout);
      expect(bundleResult.ok).toBe(false);
      expect(bundleResult.problems.map((p: { reason: string }) => p.reason)).toContainEqual(
        expect.stringMatching(new RegExp(`seq ${TARGET} is not keyway's canonical form`)),
      );
    });
  }

  it("a bundle's window relabelled to another day fails verify, and verify never prints the forged window as the bundle's", async () => {
    const day = 24 * 3600_000;
    const later = (t: string) => new Date(Date.parse(t) + day).toISOString();
    const relabel = (o: Record<string, unknown>) => {
      for (const k of ['since', 'until']) o[k] = later(o[k] as string);
    };
    const forge = async (name: string, change: (b: Record<string, Record<string, unknown>>) => void) => {
      const b = JSON.parse(readFileSync(bundle, 'utf8'));
      change(b);
      const file = join(home, `${name}.json`);
      writeFileSync(file, JSON.stringify(b));
      const json = await bundleVerify(file);
      expect(json.code, json.stdout).toBe(1);
      const result = JSON.parse(json.stdout);
      expect(result.ok).toBe(false);
      const words = await runCli(['audit', 'verify', '--bundle', file, '--public-key', pem], withoutKey());
      expect(words.code).toBe(1);
      expect(words.stdout).not.toContain(later(tsOf(3)));
      return result.problems.map((p: { reason: string }) => p.reason) as string[];
    };
    // Every since/until in the bundle moved a day on: the signed claim no longer verifies.
    expect(
      await forge('relabelled', (b) => {
        relabel(b['window']!);
        if (b['claim'] !== undefined) relabel(b['claim']);
      }),
    ).toContainEqual(expect.stringMatching(/signed claim \(its window, replica and seq range\) does not verify/));
    // Only the readable copy of the window moved: it is not the window keyway signed.
    expect(await forge('window-only', (b) => relabel(b['window']!))).toContainEqual(
      expect.stringMatching(/the bundle's window is not the one keyway signed \(.*\): it was relabelled/),
    );
    // The export time moved: also part of what keyway signed.
    expect(
      await forge('exported-at', (b) => {
        (b as Record<string, unknown>)['exported_at'] = later(String((b as Record<string, unknown>)['exported_at']));
      }),
    ).toContainEqual(expect.stringMatching(/the bundle's window is not the one keyway signed/));
    // Passed off as a bundle from before windows were signed: refused, saying so.
    expect(
      await forge('unsigned', (b) => {
        relabel(b['window']!);
        delete b['claim'];
        (b as Record<string, unknown>)['format'] = 'keyway-audit-bundle/1';
      }),
    ).toContainEqual(expect.stringMatching(/the bundle's window is not signed \(a keyway-audit-bundle\/1 bundle/));
  });

  it('verify --bundle prints the signed window, the first and last line times and the last checkpoint', async () => {
    const r = await runCli(['audit', 'verify', '--bundle', bundle, '--public-key', pem], withoutKey());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`signed by key`);
    expect(r.stdout).toContain(`${tsOf(3)} to ${tsOf(7)}, 5 line(s) from seq 3 to 7`);
    expect(r.stdout).toMatch(new RegExp(`lines from ${tsOf(1)} to ${tsOf(LINES)}; last checkpoint: seq ${LINES}, signed at `));
  });
});
