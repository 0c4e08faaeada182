// keyway run --contain's sandbox, its pure parts (issue 47): bwrap's arguments from a plan, and the
// seccomp filter run through a small classic-BPF interpreter, so each verdict is the kernel's reading.
import { describe, expect, it } from 'vitest';
import { mounts } from '../helpers/bwrap-mounts.ts';
import { bwrapArguments, type PathKind, planProblem, type SandboxPlan } from '../../src/contain/sandbox.ts';
import { containmentFilter } from '../../src/contain/seccomp.ts';

const plan: SandboxPlan = {
  uid: 1000,
  gid: 1000,
  workdir: '/home/u/project',
  writable: ['/home/u/.agent-state'],
  sockets: [],
  absent: [],
  throwawayHome: undefined,
  readable: [],
  state: [],
  hiddenSockets: [],
  hide: ['/home/u/.keyway/logs', '/home/u/.keyway', '/home/u/.ssh', '/tmp/keyway-home', '/home/u/.netrc', '/home/u/.missing'],
  privateDirs: [],
  programs: ['/usr/bin', '/run/current-system/sw/bin', '/tmp/gone/bin'],
  homes: ['/home/u'],
  pathFolders: ['/usr/bin'],
  relativePathEntries: [],
  gitConfigured: [],
  homeLinked: [],
};
const files: Record<string, PathKind> = {
  '/tmp': 'dir',
  '/var/tmp': 'dir',
  '/run': 'dir',
  '/var/run': 'dir',
  '/dev/shm': 'dir',
  '/home/u/.keyway': 'dir',
  '/home/u/.keyway/logs': 'dir',
  '/home/u/.ssh': 'dir',
  '/tmp/keyway-home': 'dir',
  '/home/u/.netrc': 'file',
  '/home/u/.bashrc': 'file',
  '/home/u/project/.git/hooks': 'dir',
  '/usr/bin': 'dir',
  '/run/current-system/sw/bin': 'dir',
};
const kind = (path: string) => files[path];

describe('bwrapArguments', () => {
  it('host read-only, private dirs, then the writable folders, then what is protected and hidden; the working folder last', () => {
    const args = bwrapArguments(plan, kind, 3, (path) => path === '/var/run');
    expect(args.slice(0, 5)).toEqual(['--unshare-user', '--uid', '1000', '--gid', '1000']);
    for (const flag of ['--unshare-pid', '--new-session', '--die-with-parent', '--unshare-ipc', '--disable-userns']) expect(args).toContain(flag);
    expect(mounts(args)).toEqual([
      '--ro-bind / /',
      '--tmpfs /tmp',
      '--tmpfs /var/tmp',
      '--tmpfs /run',
      // /var/run is a link to /run: private through it.
      '--tmpfs /dev/shm',
      // A PATH folder under the private /run, read-only through it; /usr/bin is there already, /tmp/gone/bin is not on the host.
      '--ro-bind /run/current-system/sw/bin /run/current-system/sw/bin',
      '--bind /home/u/project /home/u/project',
      '--bind /home/u/.agent-state /home/u/.agent-state',
      '--tmpfs /home/u/.ssh',
      '--remount-ro /home/u/.ssh',
      '--ro-bind /dev/null /home/u/.netrc',
      '--tmpfs /home/u/.keyway',
      '--remount-ro /home/u/.keyway',
      // logs/ went with .keyway; /tmp/keyway-home with the private /tmp; .missing is not there.
      '--chdir /home/u/project',
      '--seccomp 3',
    ]);
    expect(args.indexOf('--proc')).toBeGreaterThan(args.indexOf('/'));
  });

  it('the filter always, and no user namespace inside', () => {
    const args = bwrapArguments({ ...plan, workdir: '/home/u', writable: [] }, kind, 3);
    expect(args).toContain('--seccomp');
    expect(args).toContain('--disable-userns');
  });

  it('refuses a working folder inside a hidden one, and a writable path or socket inside one', () => {
    expect(planProblem({ ...plan, workdir: '/home/u/.keyway/config' })).toMatch(/working folder .* is inside \/home\/u\/\.keyway/);
    expect(planProblem({ ...plan, writable: ['/home/u/.ssh/x'] })).toMatch(/inside \/home\/u\/\.ssh/);
    expect(planProblem(plan)).toBeUndefined();
  });

  it("refuses what would defeat containment (contain_refused): /, a folder holding keyway's files, inside a .git, a file on PATH", () => {
    expect(planProblem({ ...plan, workdir: '/' })).toMatch(/the working folder is \//);
    expect(planProblem({ ...plan, workdir: '/home/u' }, ['/home/u/.keyway'])).toMatch(/holds keyway's own \/home\/u\/\.keyway/);
    expect(planProblem({ ...plan, writable: ['/srv'] }, ['/srv/keyway/config.yaml'])).toMatch(/--allow-write \/srv holds keyway's own/);
    expect(planProblem({ ...plan, workdir: '/home/u/project/.git' })).toMatch(/inside a \.git folder/);
    expect(planProblem({ ...plan, workdir: '/home/u/project/.GIT/hooks' })).toMatch(/inside a \.git folder/);
    expect(planProblem({ ...plan, writable: ['/usr/bin/tool'] })).toMatch(/a folder on PATH/);
    expect(planProblem({ ...plan, writable: ['/home/u/bin/tool'] })).toMatch(/a folder on PATH/);
    expect(planProblem({ ...plan, workdir: '/home/u' }, ['/srv/keyway'])).toBeUndefined();
  });
});

// struct seccomp_data for one call: nr, arch, then its arguments (the low 32 bits of each).
function data(arch: number, nr: number, ...args: number[]): Buffer {
  const d = Buffer.alloc(64);
  d.writeUInt32LE(nr, 0);
  d.writeUInt32LE(arch, 4);
  for (const [i, value] of args.entries()) d.writeUInt32LE(value >>> 0, 16 + 8 * i);
  return d;
}

/** Classic BPF as the kernel runs a seccomp filter (the instructions the filter uses: ld abs, jeq, jge and jset k, ret k). */
function run(program: Buffer, input: Buffer): number {
  let acc = 0;
  for (let pc = 0; pc * 8 < program.length; pc++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = input.readUInt32LE(k);
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected instruction ${code}`);
  }
  throw new Error('fell off the end');
}

describe('containmentFilter', () => {
  const ALLOW = 0x7fff0000;
  const EPERM = 0x00050001;
  const ENOSYS = 0x00050026;
  const EAFNOSUPPORT = 0x00050061;
  const EOPNOTSUPP = 0x0005005f;
  const X64 = 0xc000003e;
  const I386 = 0x40000003;
  const ARM64 = 0xc00000b7;
  const ARM = 0x40000028;
  const filter = containmentFilter({ unixSockets: false }, 'x64')!;

  it('no set-id bit by any call that takes a mode (x86-64 numbers); the same calls without one pass', () => {
    const modeCalls: Array<[string, number, number]> = [
      ['chmod', 90, 1],
      ['fchmod', 91, 1],
      ['fchmodat', 268, 2],
      ['fchmodat2', 452, 2],
      ['open', 2, 2],
      ['openat', 257, 3],
      ['creat', 85, 1],
      ['mkdir', 83, 1],
      ['mkdirat', 258, 2],
      ['mknod', 133, 1],
      ['mknodat', 259, 2],
    ];
    for (const [name, nr, at] of modeCalls) {
      const args = (mode: number) => Array.from({ length: at + 1 }, (_, i) => (i === at ? mode : 0));
      expect(run(filter, data(X64, nr, ...args(0o4755))), `${name} setuid`).toBe(EPERM);
      expect(run(filter, data(X64, nr, ...args(0o2755))), `${name} setgid`).toBe(EPERM);
      expect(run(filter, data(X64, nr, ...args(0o755))), `${name} plain`).toBe(ALLOW);
      expect(run(filter, data(X64, nr, ...args(0o1777))), `${name} sticky`).toBe(ALLOW);
    }
    expect(run(filter, data(X64, 437))).toBe(ENOSYS); // openat2: its mode is behind a pointer
  });

  it('no extended attribute, no user namespace, no io_uring; clone for threads passes', () => {
    for (const nr of [188, 189, 190, 463]) expect(run(filter, data(X64, nr))).toBe(EOPNOTSUPP);
    expect(run(filter, data(X64, 272, 0x10000000))).toBe(EPERM); // unshare(CLONE_NEWUSER)
    expect(run(filter, data(X64, 272, 0x10000000 | 0x20000000))).toBe(EPERM); // with CLONE_NEWUTS
    expect(run(filter, data(X64, 56, 0x10000000 | 0x00000100))).toBe(EPERM); // clone(CLONE_NEWUSER|CLONE_VM)
    expect(run(filter, data(X64, 56, 0x003d0f00))).toBe(ALLOW); // glibc's pthread_create flags
    expect(run(filter, data(X64, 435))).toBe(ENOSYS); // clone3: falls back to clone
    expect(run(filter, data(X64, 425))).toBe(EPERM); // io_uring_setup
  });

  it('sockets from an allow-list of families: IP, netlink route; Unix only with --allow-socket; the rest refused', () => {
    expect(run(filter, data(X64, 41, 2))).toBe(ALLOW); // AF_INET
    expect(run(filter, data(X64, 41, 10))).toBe(ALLOW); // AF_INET6
    expect(run(filter, data(X64, 41, 1))).toBe(EPERM); // AF_UNIX
    expect(run(filter, data(X64, 41, 16, 3, 0))).toBe(ALLOW); // AF_NETLINK, NETLINK_ROUTE
    expect(run(filter, data(X64, 41, 16, 3, 4))).toBe(EAFNOSUPPORT); // NETLINK_SOCK_DIAG
    expect(run(filter, data(X64, 41, 16, 3, 15))).toBe(EAFNOSUPPORT); // NETLINK_KOBJECT_UEVENT
    for (const family of [40, 17, 38, 44, 45, 46, 255]) expect(run(filter, data(X64, 41, family)), `family ${family}`).toBe(EAFNOSUPPORT);
    expect(run(filter, data(X64, 53, 1))).toBe(ALLOW); // socketpair(AF_UNIX)
    const withSockets = containmentFilter({ unixSockets: true }, 'x64')!;
    expect(run(withSockets, data(X64, 41, 1))).toBe(ALLOW);
    expect(run(withSockets, data(X64, 41, 40))).toBe(EAFNOSUPPORT);
    expect(run(withSockets, data(X64, 90, 0, 0o4755))).toBe(EPERM);
  });

  it('x32 is refused whole, i386 by its own numbers; an architecture that cannot run here is ENOSYS', () => {
    for (const nr of [41, 90, 425, 0, 1]) expect(run(filter, data(X64, 0x40000000 + nr, 1))).toBe(ENOSYS);
    expect(run(filter, data(X64, 0, 1))).toBe(ALLOW); // read
    expect(run(filter, data(I386, 359, 1))).toBe(EPERM);
    expect(run(filter, data(I386, 359, 2))).toBe(ALLOW);
    expect(run(filter, data(I386, 102))).toBe(EPERM); // socketcall
    expect(run(filter, data(I386, 15, 0, 0o4755))).toBe(EPERM); // chmod
    expect(run(filter, data(I386, 310, 0x10000000))).toBe(EPERM); // unshare
    expect(run(filter, data(I386, 3))).toBe(ALLOW);
    expect(run(filter, data(ARM64, 198, 1))).toBe(ENOSYS); // arm64 cannot run on x86-64
  });

  it('arm64 and arm by their own numbers; a machine it does not know has no filter', () => {
    const arm = containmentFilter({ unixSockets: false }, 'arm64')!;
    expect(run(arm, data(ARM64, 198, 1))).toBe(EPERM);
    expect(run(arm, data(ARM64, 198, 40))).toBe(EAFNOSUPPORT);
    expect(run(arm, data(ARM64, 198, 2))).toBe(ALLOW);
    expect(run(arm, data(ARM64, 53, 0, 0, 0o4755))).toBe(EPERM); // fchmodat
    expect(run(arm, data(ARM64, 56, 0, 0, 0, 0o4755))).toBe(EPERM); // openat
    expect(run(arm, data(ARM64, 97, 0x10000000))).toBe(EPERM); // unshare
    expect(run(arm, data(ARM64, 425))).toBe(EPERM);
    expect(run(arm, data(ARM64, 41, 1))).toBe(ALLOW); // 41 is not socket on arm64
    expect(run(arm, data(ARM, 281, 1))).toBe(EPERM);
    expect(run(arm, data(ARM, 15, 0, 0o2755))).toBe(EPERM); // chmod
    expect(run(arm, data(X64, 41, 1))).toBe(ENOSYS);
    expect(containmentFilter({ unixSockets: false }, 'riscv64')).toBeUndefined();
  });
});
