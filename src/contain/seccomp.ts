// The seccomp filter a contained command runs under (keyway run --contain, unless --allow-socket):
// it may not create a Unix socket (socket(AF_UNIX, …) fails with EPERM), so no host socket is
// reachable through any path the sandbox leaves visible: a listener in a folder we did not think
// to hide, or one made on the host after the command started. socketpair(2) is a different system
// call and stays: it joins two ends the command makes itself (Node's and Python's child pipes use
// it) and reaches nothing outside. io_uring is refused too: its IORING_OP_SOCKET makes a socket
// without the socket(2) call a filter sees.
//
// Written here as classic BPF, which is all bwrap's --seccomp takes: no well-kept npm package
// compiles filters, and libseccomp would mean a native build for a program this short.

const AUDIT_ARCH = { x64: 0xc000003e, ia32: 0x40000003, arm64: 0xc00000b7, arm: 0x40000028 } as const;
/** socket(2) and io_uring_setup(2) by architecture; `socketcall` is i386's multiplexer of every socket call. */
const CALLS = {
  x64: { socket: [41, 0x40000000 + 41], io_uring_setup: 425, socketcall: undefined },
  ia32: { socket: [359], io_uring_setup: 425, socketcall: 102 },
  arm64: { socket: [198], io_uring_setup: 425, socketcall: undefined },
  arm: { socket: [281], io_uring_setup: 425, socketcall: undefined },
} as const;
type Arch = keyof typeof CALLS;
/** The architectures whose programs can run on each host: x86-64 runs i386 (and x32) programs, arm64 runs 32-bit ARM ones. */
const RUNNABLE: Record<string, readonly Arch[]> = { x64: ['x64', 'ia32'], arm64: ['arm64', 'arm'] };

const AF_UNIX = 1;
const EPERM = 1;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// struct seccomp_data: nr (u32) at 0, arch (u32) at 4, args[0] at 16 (its low 32 bits first on
// these little-endian hosts; the kernel reads the family as an int, so the high bits do not count).
const OFFSET = { nr: 0, arch: 4, arg0: 16 } as const;
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const RET_K = 0x06;

type Instruction = { code: number; jt: number; jf: number; k: number };
/** An instruction whose jumps name labels, resolved to relative offsets once the program is laid out. */
type Draft = { code: number; k: number; jt?: string; jf?: string; label?: string };

/** The filter for this machine's architecture, as bwrap's --seccomp reads it (struct sock_filter, native order); undefined where it has none. */
export function unixSocketFilter(arch: string = process.arch): Buffer | undefined {
  const arches = RUNNABLE[arch];
  if (arches === undefined) return undefined;
  return encode(assemble(program(arches)));
}

function program(arches: readonly Arch[]): Draft[] {
  const drafts: Draft[] = [{ code: LD_W_ABS, k: OFFSET.arch }];
  for (const arch of arches) drafts.push({ code: JEQ_K, k: AUDIT_ARCH[arch], jt: arch, jf: 'next' });
  // An architecture not listed cannot run here; allowed rather than guessed at.
  drafts.push({ code: RET_K, k: RET_ALLOW });
  for (const arch of arches) {
    const calls = CALLS[arch];
    drafts.push({ code: LD_W_ABS, k: OFFSET.nr, label: arch });
    for (const nr of calls.socket) drafts.push({ code: JEQ_K, k: nr, jt: 'family', jf: 'next' });
    drafts.push({ code: JEQ_K, k: calls.io_uring_setup, jt: 'deny', jf: 'next' });
    // socketcall's arguments sit behind a pointer a filter cannot follow: refused whole (i386
    // programs on a current C library call socket(2) itself).
    if (calls.socketcall !== undefined) drafts.push({ code: JEQ_K, k: calls.socketcall, jt: 'deny', jf: 'next' });
    drafts.push({ code: RET_K, k: RET_ALLOW });
  }
  drafts.push({ code: LD_W_ABS, k: OFFSET.arg0, label: 'family' });
  drafts.push({ code: JEQ_K, k: AF_UNIX, jt: 'deny', jf: 'next' });
  drafts.push({ code: RET_K, k: RET_ALLOW });
  drafts.push({ code: RET_K, k: RET_ERRNO | EPERM, label: 'deny' });
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
