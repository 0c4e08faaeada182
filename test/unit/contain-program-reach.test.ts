import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { programReach, type Reacher, unreachableLine } from '../../src/contain/program-reach.ts';

// Whether the contained command's uid can run its program (contain/program-reach.ts), on real
// folders with their modes set. Run as root (CI is): root owns what is made here, and the check is
// for uid 65534, which root's bypass does not help.

const asRoot = process.getuid?.() === 0;
const NOBODY: Reacher = { uid: 65_534, gid: 65_534, groups: [], idmapped: [] };
const base = mkdtempSync(join(tmpdir(), 'keyway-reach-'));
chmodSync(base, 0o755);
afterAll(() => rmSync(base, { recursive: true, force: true }));

function folder(path: string, mode: number, owner?: { uid: number; gid: number }): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  if (owner !== undefined) chownSync(path, owner.uid, owner.gid);
  return path;
}

function program(path: string, text = '#!/bin/sh\necho hi\n', mode = 0o755): string {
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

// Skipped unless root: it makes folders owned by other users (chown), which only root can.
describe.skipIf(!asRoot)('programReach (as root only: it chowns folders to other users)', () => {
  const closed = folder(join(base, 'root-home'), 0o700);
  const project = folder(join(closed, 'proj', 'node_modules', '.bin'), 0o755);
  const cli = program(join(closed, 'proj', 'cli.js'), '#!/bin/sh\necho claude\n');
  symlinkSync('../../cli.js', join(project, 'claude'));
  const open = folder(join(base, 'usr', 'bin'), 0o755);

  it('a program in a 0700 folder root owns: unreachable for uid 65534, the folder named', () => {
    const reach = programReach('claude', project, '/', NOBODY);
    expect(reach).toMatchObject({ kind: 'unreachable', program: { path: join(project, 'claude'), real: cli }, blocked: { path: closed, mode: 0o700 } });
    if (reach.kind !== 'unreachable') return;
    expect(unreachableLine('claude', reach, 65_534, true)).toBe(
      `claude resolves to ${cli}, which uid 65534 cannot reach (${closed} is 0700): install it where every user can read it (npm install -g), or run keyway as the user who owns it`,
    );
  });

  it('a program on a 0755 path: reachable', () => {
    program(join(open, 'tool'));
    expect(programReach('tool', open, '/', NOBODY)).toMatchObject({ kind: 'reachable', program: { real: join(open, 'tool') } });
  });

  it('a link from a reachable folder into the 0700 folder: unreachable, through the link', () => {
    const links = folder(join(base, 'links'), 0o755);
    symlinkSync(cli, join(links, 'claude'));
    expect(programReach('claude', links, '/', NOBODY)).toMatchObject({ kind: 'unreachable', program: { real: cli }, blocked: { path: closed } });
  });

  it('PATH is searched as execvp does: a hit the uid cannot run is passed over for the next; the first is judged when none runs', () => {
    program(join(open, 'claude'));
    expect(programReach('claude', `${project}:${open}`, '/', NOBODY)).toMatchObject({ kind: 'reachable', program: { path: join(open, 'claude') } });
    expect(programReach('claude', `${join(base, 'nothing')}:${project}`, '/', NOBODY)).toMatchObject({
      kind: 'unreachable',
      program: { path: join(project, 'claude') },
    });
    expect(programReach('no-such-program', `${open}:${project}`, '/', NOBODY).kind).toBe('not-found');
  });

  it('a relative PATH entry (node_modules/.bin) is found from the working folder', () => {
    expect(programReach('claude', 'node_modules/.bin', join(closed, 'proj'), NOBODY).kind).toBe('unreachable');
  });

  it('the file itself: a script needs read and execute, a binary execute', () => {
    const files = folder(join(base, 'files'), 0o755);
    program(join(files, 'private'), '#!/bin/sh\n', 0o700);
    program(join(files, 'run-only-script'), '#!/bin/sh\n', 0o711);
    program(join(files, 'run-only-binary'), '\x7fELF', 0o711);
    expect(programReach('private', files, '/', NOBODY)).toMatchObject({ kind: 'unreachable', blocked: { path: join(files, 'private'), what: 'file' } });
    expect(programReach('run-only-script', files, '/', NOBODY).kind).toBe('unreachable');
    expect(programReach('run-only-binary', files, '/', NOBODY).kind).toBe('reachable');
  });

  it('a #! script whose interpreter the uid cannot reach: #!/usr/bin/env node, node in the 0700 folder', () => {
    const nodeBin = folder(join(closed, 'nvm', 'bin'), 0o755);
    program(join(nodeBin, 'fakenode'), '\x7fELF');
    const shared = folder(join(base, 'shared'), 0o755);
    program(join(shared, 'agent'), '#!/usr/bin/env fakenode\nconsole.log(1)\n');
    const reach = programReach('agent', `${shared}:${nodeBin}`, '/', NOBODY);
    expect(reach).toMatchObject({ kind: 'unreachable', program: { real: join(shared, 'agent') }, interpreter: { real: join(nodeBin, 'fakenode') } });
    if (reach.kind === 'unreachable')
      expect(unreachableLine('agent', reach, 65_534, true)).toContain(`whose interpreter ${join(nodeBin, 'fakenode')} uid 65534 cannot reach`);
    // env finds its program as execvp does: a node later on PATH that the uid can run is the one.
    program(join(open, 'fakenode'), '\x7fELF');
    expect(programReach('agent', `${shared}:${nodeBin}:${open}`, '/', NOBODY).kind).toBe('reachable');
    // With env -S and an assignment before the program, the same.
    program(join(shared, 'agent-s'), '#!/usr/bin/env -S X=1 fakenode --flag\n');
    expect(programReach('agent-s', `${shared}:${nodeBin}`, '/', NOBODY).kind).toBe('unreachable');
    // Its interpreter named by path, in the closed folder.
    program(join(shared, 'agent-path'), `#!${join(nodeBin, 'fakenode')}\n`);
    expect(programReach('agent-path', shared, '/', NOBODY)).toMatchObject({ kind: 'unreachable', interpreter: { real: join(nodeBin, 'fakenode') } });
  });

  it('ownership counts, not root: a 0700 folder the uid owns, a 0750 folder of its group', () => {
    const own = folder(join(base, 'own'), 0o700, { uid: 65_534, gid: 65_534 });
    program(join(own, 'mine'));
    expect(programReach('mine', own, '/', NOBODY).kind).toBe('reachable');
    const grouped = folder(join(base, 'grouped'), 0o750, { uid: 0, gid: 65_534 });
    program(join(grouped, 'ours'));
    expect(programReach('ours', grouped, '/', NOBODY).kind).toBe('reachable');
    expect(programReach('ours', grouped, '/', { ...NOBODY, gid: 1234 }).kind).toBe('unreachable');
    expect(programReach('ours', grouped, '/', { ...NOBODY, gid: 1234, groups: [65_534] }).kind).toBe('reachable');
    // The owner's bits apply to the owner even when "other" would allow more.
    const ownerless = folder(join(base, 'ownerless'), 0o075, { uid: 65_534, gid: 0 });
    program(join(ownerless, 'p'));
    expect(programReach('p', ownerless, '/', NOBODY).kind).toBe('unreachable');
  });

  it('below a folder keyway idmaps to the uid (as root, a closed folder above the working folder), root’s files are its own', () => {
    expect(programReach('claude', project, '/', { ...NOBODY, idmapped: [closed] }).kind).toBe('reachable');
  });
});
