import { lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

// A policy file decides what agents may do, so no one but keyway's user may be able to change it.
// keyway can tell from the file system: the file and every folder above it (after links are
// followed) must be this user's or root's and writable by no one else, a sticky folder of root's
// such as /tmp aside. An agent running as another user (keyway service, a contained command, which
// never sees keyway's home) then cannot write one; an agent running as keyway's own user can write
// whatever keyway can, and that is said in docs/policy-as-code.md.

/** Why `path` cannot be trusted as a policy file, or undefined when it can. */
export function untrustedPolicyFile(path: string, uid = process.getuid?.()): string | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    return `it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const file = statSync(real);
  if (!file.isFile()) return 'it is not a regular file';
  if (uid === undefined) return undefined; // no owners to compare (Windows): nothing keyway can tell
  for (let at = real; ; at = dirname(at)) {
    const st = at === real ? file : lstatSync(at);
    const what = at === real ? 'the file' : `its folder ${at}`;
    if (st.uid !== uid && st.uid !== 0) return `${what} belongs to uid ${st.uid}, not to keyway's user (${uid}) or root`;
    const stickyRoot = st.uid === 0 && (st.mode & 0o1000) !== 0;
    if ((st.mode & 0o022) !== 0 && !stickyRoot) return `${what} is writable by ${(st.mode & 0o002) !== 0 ? 'every user' : 'its group'}`;
    if (at === dirname(at)) return undefined;
  }
}
