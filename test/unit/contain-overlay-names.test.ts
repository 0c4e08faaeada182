// A name the contained command wrote that is not UTF-8 (contain/overlay.ts): the settle reads names
// as bytes, keeps that one aside with its bytes in kept.json, and puts everything else in place. Before,
// one such name failed the whole settle and nothing landed. Settled here as review settles a run that
// never finished (from the upper folder, no overlay mounted).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type KeptRecord, removeScratch, settleOverlays } from '../../src/contain/overlay.ts';

const base = mkdtempSync(join(tmpdir(), 'keyway-overlay-names-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const bytesPath = (folder: string, ...names: Array<string | Buffer>) =>
  Buffer.concat([Buffer.from(folder), ...names.flatMap((n) => [Buffer.from('/'), Buffer.from(n)])]);

describe('settleOverlays with names that are not UTF-8', () => {
  it('keeps each aside (with what is inside a folder so named) and puts the rest in place', () => {
    const root = join(base, 'project');
    const scratch = join(base, 'keyway-contain-Names1');
    const upper = join(scratch, '0', 'upper');
    mkdirSync(root, { recursive: true });
    mkdirSync(join(upper, 'src'), { recursive: true });
    writeFileSync(join(upper, 'ordinary.txt'), 'ordinary\n');
    writeFileSync(join(upper, 'src', 'café 日本.ts'), 'text\n');
    const badFile = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]);
    const badFolder = Buffer.from([0x64, 0xc3]);
    writeFileSync(bytesPath(upper, 'src', badFile), 'raw\n');
    mkdirSync(bytesPath(upper, badFolder));
    writeFileSync(bytesPath(upper, badFolder, 'inner.txt'), 'inner\n');
    const record = { v: 1 as const, startedMs: Date.now(), workdir: root, roots: [root], homes: [], pathFolders: [], pid: 1, state: 'running' as const };
    writeFileSync(join(scratch, 'run.json'), JSON.stringify(record));

    const settled = settleOverlays(scratch, [{ root, upper, lower: root }], record, false);
    expect(settled.kept).toEqual([
      { root, rel: 'd\\xc3', raw: badFolder.toString('base64'), kind: 'dir', why: 'a name that is not UTF-8 (kept with all inside it)' },
      { root, rel: 'src/bad\\xff\\xfe', raw: Buffer.from('src/bad\xff\xfe', 'latin1').toString('base64'), kind: 'file', why: 'a name that is not UTF-8' },
    ]);
    expect(readFileSync(join(root, 'ordinary.txt'), 'utf8')).toBe('ordinary\n');
    expect(readFileSync(join(root, 'src', 'café 日本.ts'), 'utf8')).toBe('text\n');
    expect(
      readdirSync(root, { encoding: 'buffer' })
        .map((n) => n.toString('latin1'))
        .sort(),
    ).toEqual(['ordinary.txt', 'src']);
    expect(readdirSync(join(root, 'src'))).toEqual(['café 日本.ts']);
    expect((JSON.parse(readFileSync(join(scratch, 'kept.json'), 'utf8')) as KeptRecord).kept).toEqual(settled.kept);
  });
});

describe('removeScratch', () => {
  // As root this passes either way: the ordinary user's case is test/integration/contain-review-names.test.ts.
  it('removes folders the command left without write permission for their owner', () => {
    const scratch = join(base, 'keyway-contain-ReadOnly');
    const upper = join(scratch, '0', 'upper');
    mkdirSync(join(upper, 'made', 'deeper'), { recursive: true });
    mkdirSync(join(scratch, '0', 'work', 'work'), { recursive: true });
    mkdirSync(join(scratch, '0', 'lower'));
    writeFileSync(join(upper, 'made', 'deeper', 'f'), 'x');
    writeFileSync(bytesPath(upper, 'made', Buffer.from([0xff])), 'x');
    chmodSync(join(upper, 'made', 'deeper'), 0o500);
    chmodSync(join(upper, 'made'), 0o000);
    chmodSync(join(scratch, '0', 'work', 'work'), 0o000);
    removeScratch(scratch);
    expect(existsSync(scratch)).toBe(false);
  });
});
