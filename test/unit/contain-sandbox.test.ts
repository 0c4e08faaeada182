// keyway run --contain's sandbox, its pure parts (issue 47): bwrap's arguments from a plan, and the
// seccomp filter run through a small classic-BPF interpreter, so each verdict is the kernel's reading.
import { describe, expect, it } from 'vitest';
import { bwrapArguments, type PathKind, planProblem, type SandboxPlan } from '../../src/contain/sandbox.ts';
import { unixSocketFilter } from '../../src/contain/seccomp.ts';

const plan: SandboxPlan = {
  uid: 1000,
  gid: 1000,
  workdir: '/home/u/project',
  writable: ['/home/u/.agent-state'],
  sockets: [],
  hide: ['/home/u/.keyway/logs', '/home/u/.keyway', '/home/u/.ssh', '/tmp/keyway-home', '/home/u/.netrc', '/home/u/.missing'],
  protect: ['/home/u/.bashrc', '/home/u/project/.git/hooks'],
  privateDirs: [],
  programs: ['/usr/bin', '/run/current-system/sw/bin', '/tmp/gone/bin'],
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

/** The argument pairs (option, operand…) in order, for reading. */
function mounts(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--bind' || a === '--ro-bind') out.push(`${a} ${args[++i]} ${args[++i]}`);
    else if (a === '--tmpfs' || a === '--remount-ro' || a === '--chdir' || a === '--seccomp') out.push(`${a} ${args[++i]}`);
  }
  return out;
}

describe('bwrapArguments', () => {
  it('host read-only, private dirs, then the writable folders, then what is protected and hidden; the working folder last', () => {
    const args = bwrapArguments(plan, kind, 3, (path) => path === '/var/run');
    expect(args.slice(0, 5)).toEqual(['--unshare-user', '--uid', '1000', '--gid', '1000']);
    for (const flag of ['--unshare-pid', '--new-session', '--die-with-parent', '--unshare-ipc']) expect(args).toContain(flag);
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
      // ~/.bashrc is not inside a writable folder here: read-only already.
      '--ro-bind /home/u/project/.git/hooks /home/u/project/.git/hooks',
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

  it('a protected file inside a writable folder is bound read-only; no filter, no --seccomp', () => {
    const args = bwrapArguments({ ...plan, workdir: '/home/u', writable: [] }, kind, undefined);
    expect(mounts(args)).toContain('--ro-bind /home/u/.bashrc /home/u/.bashrc');
    expect(args).not.toContain('--seccomp');
  });

  it('refuses a working folder inside a hidden one, and a writable path or socket inside one', () => {
    expect(planProblem({ ...plan, workdir: '/home/u/.keyway/config' })).toMatch(/working folder .* is inside \/home\/u\/\.keyway/);
    expect(planProblem({ ...plan, writable: ['/home/u/.ssh/x'] })).toMatch(/inside \/home\/u\/\.ssh/);
    expect(planProblem(plan)).toBeUndefined();
  });
});

// struct seccomp_data for one call: nr, arch, then args[0].
function data(arch: number, nr: number, arg0 = 0): Buffer {
  const d = Buffer.alloc(64);
  d.writeUInt32LE(nr, 0);
  d.writeUInt32LE(arch, 4);
  d.writeUInt32LE(arg0, 16);
  return d;
}

/** Classic BPF as the kernel runs a seccomp filter (the instructions the filter uses: ld abs, jeq k, ret k). */
function run(program: Buffer, input: Buffer): number {
  let acc = 0;
  for (let pc = 0; pc * 8 < program.length; pc++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = input.readUInt32LE(k);
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected instruction ${code}`);
  }
  throw new Error('fell off the end');
}

describe('unixSocketFilter', () => {
  const ALLOW = 0x7fff0000;
  const EPERM = 0x00050001;
  const X64 = 0xc000003e;
  const I386 = 0x40000003;
  const ARM64 = 0xc00000b7;

  it('x86-64: socket(AF_UNIX) is EPERM in every ABI, io_uring too; other sockets and calls pass', () => {
    const filter = unixSocketFilter('x64')!;
    expect(run(filter, data(X64, 41, 1))).toBe(EPERM);
    expect(run(filter, data(X64, 41, 2))).toBe(ALLOW); // AF_INET
    expect(run(filter, data(X64, 41, 10))).toBe(ALLOW); // AF_INET6
    expect(run(filter, data(X64, 53, 1))).toBe(ALLOW); // socketpair(AF_UNIX)
    expect(run(filter, data(X64, 0x40000000 + 41, 1))).toBe(EPERM); // x32
    expect(run(filter, data(X64, 425))).toBe(EPERM); // io_uring_setup
    expect(run(filter, data(X64, 0, 1))).toBe(ALLOW); // read
    expect(run(filter, data(I386, 359, 1))).toBe(EPERM);
    expect(run(filter, data(I386, 359, 2))).toBe(ALLOW);
    expect(run(filter, data(I386, 102))).toBe(EPERM); // socketcall
    expect(run(filter, data(I386, 3))).toBe(ALLOW);
  });

  it('arm64 the same, by its own numbers; an architecture it does not know has no filter', () => {
    const filter = unixSocketFilter('arm64')!;
    expect(run(filter, data(ARM64, 198, 1))).toBe(EPERM);
    expect(run(filter, data(ARM64, 198, 2))).toBe(ALLOW);
    expect(run(filter, data(ARM64, 425))).toBe(EPERM);
    expect(run(filter, data(ARM64, 41, 1))).toBe(ALLOW); // 41 is not socket on arm64
    expect(unixSocketFilter('riscv64')).toBeUndefined();
  });
});
