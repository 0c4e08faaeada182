// The pieces of the daemonless image (scripts/release/): the tar writer's bytes as GNU tar reads
// them, the Dockerfile's entry as the image config takes it, and the refusals. The image built and
// run end to end: test/integration/release-image.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDockerfileEntry, readDockerfileEntry } from '../../scripts/release/dockerfile-entry.mjs';
import { elfNeeds } from '../../scripts/release/elf-needs.mjs';
import { checkLibraries, EXECUTABLE_PATH, elfArchitecture, imageConfig, KEYWAY_UID, keywayLayer } from '../../scripts/release/oci-image.mjs';
import { tarArchive } from '../../scripts/release/tar.mjs';
import { REPO } from '../helpers/deploy-files.ts';

const EPOCH = 1_700_000_000;

/** GNU tar's verbose listing of an archive, numeric owners, full times. */
function listing(archive: Buffer): string[] {
  const file = join(mkdtempSync(join(tmpdir(), 'keyway-tar-')), 'a.tar');
  writeFileSync(file, archive);
  return execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } })
    .trim()
    .split('\n');
}

describe('the tar writer', () => {
  const long = `usr/share/${'d'.repeat(90)}/${'f'.repeat(90)}.txt`;
  const entries = [
    { path: 'z', type: 'file' as const, mode: 0o644, data: Buffer.from('last') },
    { path: 'app/data', type: 'dir' as const, mode: 0o755, uid: 1000, gid: 1000 },
    { path: 'bin/sh', type: 'symlink' as const, mode: 0o777, linkname: 'busybox' },
    { path: long, type: 'file' as const, mode: 0o755, data: Buffer.alloc(513, 1) },
  ];

  it('writes entries sorted by path, with the one time and the owners given, that GNU tar reads', () => {
    const lines = listing(tarArchive(entries, EPOCH));
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(['app/data/', 'bin/sh -> busybox', long, 'z']);
    expect(lines[0]).toMatch(/^drwxr-xr-x 1000\/1000 +0 2023-11-14 22:13:20 app\/data\/$/);
    expect(lines[2]).toMatch(/^-rwxr-xr-x 0\/0 +513 2023-11-14 22:13:20 /);
    expect(new Set(lines.map((l) => l.split(/\s+/).slice(3, 5).join(' ')))).toEqual(new Set(['2023-11-14 22:13:20']));
  });

  it('gives the same bytes for the same entries in any order', () => {
    expect(tarArchive([...entries].reverse(), EPOCH).equals(tarArchive(entries, EPOCH))).toBe(true);
  });

  it('refuses two entries at one path, an absolute path and a name no ustar header holds', () => {
    expect(() => tarArchive([entries[0]!, entries[0]!], EPOCH)).toThrow(/two entries at z/);
    expect(() => tarArchive([{ ...entries[0]!, path: '/etc/passwd' }], EPOCH)).toThrow(/not a relative path/);
    expect(() => tarArchive([{ ...entries[0]!, path: 'x'.repeat(101) }], EPOCH)).toThrow(/too long/);
  });
});

describe("the image's entry", () => {
  it("is the Dockerfile's last stage: entrypoint, command, home, volumes, ports, user", () => {
    const entry = readDockerfileEntry(join(REPO, 'Dockerfile'));
    expect(entry.entrypoint).toEqual(['/bin/sh', '/app/docker-entrypoint.sh']);
    expect(entry.cmd[0]).toBe('start');
    expect(entry.env['KEYWAY_HOME']).toBe('/app');
    expect(entry.user).toBe('node');
    const config = imageConfig({ arch: 'amd64', diffIds: ['a', 'b'], version: '9.9.9', commit: 'c0ffee', created: '2023-11-14T22:13:20Z', packages: [] });
    expect(config.config.Entrypoint).toEqual(entry.entrypoint);
    expect(config.config.Cmd).toEqual(entry.cmd);
    expect(config.config.WorkingDir).toBe('/app');
    expect(config.config.User).toBe(`${KEYWAY_UID}:${KEYWAY_UID}`);
    expect(Object.keys(config.config.Volumes).sort()).toEqual([...entry.volumes].sort());
    expect(config.config.Env).toContain(`KEYWAY_BIN=/${EXECUTABLE_PATH}`);
    expect(config.config.Labels['org.opencontainers.image.revision']).toBe('c0ffee');
  });

  it('refuses a Dockerfile it cannot read exactly', () => {
    expect(() => parseDockerfileEntry('FROM x\nENTRYPOINT /bin/sh entry.sh\nCMD ["start"]\n')).toThrow();
    expect(() => parseDockerfileEntry('FROM x\nENV A "b c"\nENTRYPOINT ["a"]\nCMD ["b"]\n')).toThrow(/ENV in a form not read here/);
    expect(() => parseDockerfileEntry('FROM x\nCMD ["b"]\n')).toThrow(/no ENTRYPOINT/);
  });
});

describe("keyway's layer", () => {
  it("gives keyway its state folders and nothing else: the executable, entrypoint and rules are root's", () => {
    const layer = keywayLayer(Buffer.from('\x7fELF'));
    const owned = layer.filter((e) => (e.uid ?? 0) !== 0).map((e) => e.path);
    expect(owned.sort()).toEqual(['app', 'app/ca-public', 'app/certs', 'app/config', 'app/data', 'app/logs']);
    const passwd = layer.find((e) => e.path === 'etc/passwd')!.data!.toString();
    expect(passwd).toMatch(new RegExp(`^keyway:x:${KEYWAY_UID}:${KEYWAY_UID}:`, 'm'));
    expect(layer.find((e) => e.path === 'app/docker-entrypoint.sh')!.data!.equals(readFileSync(join(REPO, 'deploy/docker-entrypoint.sh')))).toBe(true);
  });

  it('takes an x86-64 or aarch64 ELF executable only', () => {
    expect(elfArchitecture(readFileSync(process.execPath))).toBe(process.arch === 'arm64' ? 'arm64' : 'amd64');
    expect(() => elfArchitecture(Buffer.from('#!/bin/sh\nexec node dist/cli/main.js "$@"\n'))).toThrow(/not an ELF file/);
    const riscv = Buffer.alloc(64);
    riscv.writeUInt32BE(0x7f454c46, 0);
    riscv.writeUInt16LE(0xf3, 18);
    expect(() => elfArchitecture(riscv)).toThrow(/neither x86-64 nor aarch64/);
  });

  it('refuses an executable whose loader or libraries the base layer lacks, naming them', () => {
    const node = readFileSync(process.execPath);
    const { interpreter, needed } = elfNeeds(node);
    expect(interpreter).toMatch(/^\/lib/);
    expect(needed).toContain('libc.so.6');
    const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
    const arch = elfArchitecture(node);
    const all = [interpreter!.slice(1), ...needed.map((l) => `lib/${triplet}/${l}`)].map((path) => ({ path, type: 'file' as const, mode: 0o755 }));
    expect(() => checkLibraries(node, arch, all)).not.toThrow();
    const withoutLibc = all.filter((e) => !e.path.endsWith('/libc.so.6'));
    expect(() => checkLibraries(node, arch, withoutLibc)).toThrow(/needs libc\.so\.6, not in the image/);
    expect(() => checkLibraries(node, arch, all.slice(1))).toThrow(new RegExp(`needs ${interpreter!.replaceAll('.', '\\.')}`));
  });
});
