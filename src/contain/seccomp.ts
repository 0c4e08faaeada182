// The seccomp filter every contained command runs under (keyway run --contain). It is written as
// what the command may do, call by call, where a call's arguments decide; everything it names
// below is a way to leave something behind that carries privilege, or a way around the sandbox:
//
// - No set-id bit, ever: chmod, fchmod, fchmodat, fchmodat2, open, openat, creat, mkdir, mkdirat,
//   mknod and mknodat are refused (EPERM) when their mode has S_ISUID or S_ISGID. A file the command
//   makes or changes is never setuid or setgid on the host, whoever owns it (as root, a folder root
//   owns is idmapped and the command's files land as root's: contain/idmapped-folders.ts).
//   openat2 takes its mode behind a pointer a filter cannot read: ENOSYS, and C libraries fall back
//   to openat, which is read.
// - No extended attribute is set (setxattr, lsetxattr, fsetxattr, setxattrat: EOPNOTSUPP, as on a
//   file system without them): the name is behind a pointer too, and `security.capability` is one.
//   Tools that copy attributes (cp -a, tar --xattrs) treat that answer as "not supported here".
// - No user namespace: unshare and clone with CLONE_NEWUSER are refused, clone3 (flags behind a
//   pointer) is ENOSYS so threads fall back to clone. bwrap's --disable-userns says the same a second
//   way (contain/sandbox.ts). Every other namespace needs a capability the command does not have.
// - Sockets of an allow-list of families: IPv4 and IPv6 (what keyway's redirect serves), netlink's
//   route protocol only (C libraries read their interfaces with it; in the command's own network
//   namespace it shows loopback and can change nothing), and Unix only where --allow-socket named a
//   host socket. AF_UNIX otherwise is EPERM (docs/containment.md); every other family, AF_VSOCK and
//   those added later included, is EAFNOSUPPORT. socketpair(2) is a different call and stays: it
//   joins two ends the command makes itself. i386's socketcall (every socket call behind one
//   pointer) and io_uring (its own socket and open operations, which no filter sees) are refused.
// - Only the architectures this machine runs natively and for compatibility (x86-64 with i386,
//   arm64 with arm). The x32 ABI (x86-64 numbers with bit 30 set) is refused whole, and so is any
//   architecture not listed: ENOSYS.
//
// Written here as classic BPF, which is all bwrap's --seccomp takes: no well-kept npm package
// compiles filters, and libseccomp would mean a native build for a program this short.

const AUDIT_ARCH = { x64: 0xc000003e, ia32: 0x40000003, arm64: 0xc00000b7, arm: 0x40000028 } as const;
type Arch = keyof typeof AUDIT_ARCH;

/** System call numbers, by architecture (undefined: the architecture has no such call). */
type CallNumbers = Record<CallName, number | undefined>;
type CallName =
  | 'chmod'
  | 'fchmod'
  | 'fchmodat'
  | 'fchmodat2'
  | 'open'
  | 'openat'
  | 'openat2'
  | 'creat'
  | 'mkdir'
  | 'mkdirat'
  | 'mknod'
  | 'mknodat'
  | 'setxattr'
  | 'lsetxattr'
  | 'fsetxattr'
  | 'setxattrat'
  | 'unshare'
  | 'clone'
  | 'clone3'
  | 'socket'
  | 'socketcall'
  | 'io_uring_setup';

// Calls added since Linux 5.1 share one number on every architecture (io_uring_setup 425, clone3
// 435, openat2 437, fchmodat2 452, setxattrat 463).
const SHARED = { io_uring_setup: 425, clone3: 435, openat2: 437, fchmodat2: 452, setxattrat: 463 } as const;
const CALLS: Record<Arch, CallNumbers> = {
  x64: {
    ...SHARED,
    chmod: 90,
    fchmod: 91,
    fchmodat: 268,
    open: 2,
    openat: 257,
    creat: 85,
    mkdir: 83,
    mkdirat: 258,
    mknod: 133,
    mknodat: 259,
    setxattr: 188,
    lsetxattr: 189,
    fsetxattr: 190,
    unshare: 272,
    clone: 56,
    socket: 41,
    socketcall: undefined,
  },
  ia32: {
    ...SHARED,
    chmod: 15,
    fchmod: 94,
    fchmodat: 306,
    open: 5,
    openat: 295,
    creat: 8,
    mkdir: 39,
    mkdirat: 296,
    mknod: 14,
    mknodat: 297,
    setxattr: 226,
    lsetxattr: 227,
    fsetxattr: 228,
    unshare: 310,
    clone: 120,
    socket: 359,
    socketcall: 102,
  },
  arm64: {
    ...SHARED,
    chmod: undefined,
    fchmod: 52,
    fchmodat: 53,
    open: undefined,
    openat: 56,
    creat: undefined,
    mkdir: undefined,
    mkdirat: 34,
    mknod: undefined,
    mknodat: 33,
    setxattr: 5,
    lsetxattr: 6,
    fsetxattr: 7,
    unshare: 97,
    clone: 220,
    socket: 198,
    socketcall: undefined,
  },
  arm: {
    ...SHARED,
    chmod: 15,
    fchmod: 94,
    fchmodat: 333,
    open: 5,
    openat: 322,
    creat: 8,
    mkdir: 39,
    mkdirat: 323,
    mknod: 14,
    mknodat: 324,
    setxattr: 226,
    lsetxattr: 227,
    fsetxattr: 228,
    unshare: 337,
    clone: 120,
    socket: 281,
    socketcall: 102,
  },
};

/** The architectures whose programs can run on each host: x86-64 runs i386 programs, arm64 runs 32-bit ARM ones. */
const RUNNABLE: Record<string, readonly Arch[]> = { x64: ['x64', 'ia32'], arm64: ['arm64', 'arm'] };
/** x32 system calls are x86-64's numbers with this bit set, under x86-64's audit arch. */
const X32_BIT = 0x40000000;

/** Which argument holds the mode each mode-taking call is checked by. */
const MODE_ARGUMENT: ReadonlyArray<[CallName, number]> = [
  ['chmod', 1],
  ['fchmod', 1],
  ['fchmodat', 2],
  ['fchmodat2', 2],
  ['open', 2],
  ['openat', 3],
  ['creat', 1],
  ['mkdir', 1],
  ['mkdirat', 2],
  ['mknod', 1],
  ['mknodat', 2],
];
const SET_ID_BITS = 0o6000;
const CLONE_NEWUSER = 0x10000000;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;

const ERRNO = { EPERM: 1, ENOSYS: 38, EAFNOSUPPORT: 97, EOPNOTSUPP: 95 } as const;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// struct seccomp_data: nr (u32) at 0, arch (u32) at 4, args[i] at 16 + 8i (its low 32 bits first
// on these little-endian hosts; every argument checked here is an int, a mode_t or flags whose
// bits of interest are in the low word).
const OFFSET = { nr: 0, arch: 4 } as const;
const argument = (i: number) => 16 + 8 * i;
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

type Instruction = { code: number; jt: number; jf: number; k: number };
/** An instruction whose jumps name labels, resolved to relative offsets once the program is laid out. */
type Draft = { code: number; k: number; jt?: string; jf?: string; label?: string };

export interface FilterOptions {
  /** --allow-socket named a host socket: AF_UNIX sockets may be made. */
  unixSockets: boolean;
}

/**
 * What a run that failed says of the sockets the filter refuses (a filter cannot tell keyway
 * that it refused one, so this is said after the fact, naming what it refuses and the errors a
 * program sees): a program that needs such a socket otherwise dies with a bare EPERM.
 */
export function refusedSocketsNote(options: FilterOptions): string {
  const unix = options.unixSockets ? '' : 'Unix sockets (AF_UNIX: "Operation not permitted", EPERM; --allow-socket PATH lets it reach a host socket), and ';
  return `inside, keyway refuses ${unix}every socket family but IPv4, IPv6 and netlink's route protocol (AF_NETLINK's other protocols, AF_PACKET, AF_VSOCK, AF_BLUETOOTH, …: "Address family not supported by protocol", EAFNOSUPPORT): if CMD failed making a socket, that is why (docs/containment.md)`;
}

/** The filter for this machine's architecture, as bwrap's --seccomp reads it (struct sock_filter, native order); undefined where it has none. */
export function containmentFilter(options: FilterOptions, arch: string = process.arch): Buffer | undefined {
  const arches = RUNNABLE[arch];
  if (arches === undefined) return undefined;
  return encode(assemble(program(arches, options)));
}

function program(arches: readonly Arch[], options: FilterOptions): Draft[] {
  const drafts: Draft[] = [{ code: LD_W_ABS, k: OFFSET.arch }];
  for (const arch of arches) drafts.push({ code: JEQ_K, k: AUDIT_ARCH[arch], jt: arch, jf: 'next' });
  drafts.push({ code: RET_K, k: RET_ERRNO | ERRNO.ENOSYS });
  for (const arch of arches) drafts.push(...callChecks(arch));
  // Shared tails: each loads the argument it judges, then answers.
  for (const [name, at] of MODE_ARGUMENT) {
    drafts.push({ code: LD_W_ABS, k: argument(at), label: `mode:${name}` });
    drafts.push({ code: JSET_K, k: SET_ID_BITS, jt: 'eperm', jf: 'allow' });
  }
  drafts.push({ code: LD_W_ABS, k: argument(0), label: 'namespace-flags' });
  drafts.push({ code: JSET_K, k: CLONE_NEWUSER, jt: 'eperm', jf: 'allow' });
  drafts.push({ code: LD_W_ABS, k: argument(0), label: 'family' });
  drafts.push({ code: JEQ_K, k: AF_INET, jt: 'allow', jf: 'next' });
  drafts.push({ code: JEQ_K, k: AF_INET6, jt: 'allow', jf: 'next' });
  drafts.push({ code: JEQ_K, k: AF_UNIX, jt: options.unixSockets ? 'allow' : 'eperm', jf: 'next' });
  drafts.push({ code: JEQ_K, k: AF_NETLINK, jt: 'netlink', jf: 'eafnosupport' });
  drafts.push({ code: LD_W_ABS, k: argument(2), label: 'netlink' });
  drafts.push({ code: JEQ_K, k: NETLINK_ROUTE, jt: 'allow', jf: 'eafnosupport' });
  drafts.push({ code: RET_K, k: RET_ALLOW, label: 'allow' });
  drafts.push({ code: RET_K, k: RET_ERRNO | ERRNO.EPERM, label: 'eperm' });
  drafts.push({ code: RET_K, k: RET_ERRNO | ERRNO.ENOSYS, label: 'enosys' });
  drafts.push({ code: RET_K, k: RET_ERRNO | ERRNO.EAFNOSUPPORT, label: 'eafnosupport' });
  drafts.push({ code: RET_K, k: RET_ERRNO | ERRNO.EOPNOTSUPP, label: 'eopnotsupp' });
  return drafts;
}

/** One architecture's dispatch on the call number: to a shared tail, a refusal, or allowed. */
function callChecks(arch: Arch): Draft[] {
  const calls = CALLS[arch];
  const drafts: Draft[] = [{ code: LD_W_ABS, k: OFFSET.nr, label: arch }];
  if (arch === 'x64') drafts.push({ code: JGE_K, k: X32_BIT, jt: 'enosys', jf: 'next' });
  const to = (name: CallName, target: string) => {
    const nr = calls[name];
    if (nr !== undefined) drafts.push({ code: JEQ_K, k: nr, jt: target, jf: 'next' });
  };
  for (const [name] of MODE_ARGUMENT) to(name, `mode:${name}`);
  to('openat2', 'enosys');
  for (const name of ['setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat'] as const) to(name, 'eopnotsupp');
  to('unshare', 'namespace-flags');
  to('clone', 'namespace-flags');
  to('clone3', 'enosys');
  to('socket', 'family');
  to('socketcall', 'eperm');
  to('io_uring_setup', 'eperm');
  drafts.push({ code: RET_K, k: RET_ALLOW });
  return drafts;
}

function assemble(drafts: Draft[]): Instruction[] {
  const at = new Map<string, number>();
  drafts.forEach((d, i) => {
    if (d.label !== undefined) at.set(d.label, i);
  });
  const offset = (from: number, label: string | undefined): number => {
    if (label === undefined || label === 'next') return 0;
    const target = at.get(label);
    if (target === undefined || target <= from || target - from - 1 > 255) throw new Error(`seccomp: jump to ${label} out of reach`);
    return target - from - 1;
  };
  return drafts.map((d, i) => ({ code: d.code, k: d.k, jt: offset(i, d.jt), jf: offset(i, d.jf) }));
}

function encode(program: Instruction[]): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((ins, i) => {
    bytes.writeUInt16LE(ins.code, i * 8);
    bytes.writeUInt8(ins.jt, i * 8 + 2);
    bytes.writeUInt8(ins.jf, i * 8 + 3);
    bytes.writeUInt32LE(ins.k >>> 0, i * 8 + 4);
  });
  return bytes;
}
