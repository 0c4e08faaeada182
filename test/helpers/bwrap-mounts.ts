/** bwrap's mount and place arguments (option, operands…) in order, one string each, for reading in a test. */
export function mounts(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--bind' || a === '--ro-bind' || a === '--ro-bind-try') out.push(`${a} ${args[++i]} ${args[++i]}`);
    else if (a === '--tmpfs' || a === '--remount-ro' || a === '--chdir' || a === '--seccomp') out.push(`${a} ${args[++i]}`);
  }
  return out;
}
