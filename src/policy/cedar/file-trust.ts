import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, realpathSync, type Stats, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

// A policy file decides what agents may do, so no one but keyway's user may be able to change it.
// keyway can tell from the file system: the file and every folder above it must be this user's or
// root's and writable by no one else, a sticky folder of root's such as /tmp aside. Both the folders
// of the path as given (a link in a folder others may write can be pointed elsewhere) and those of
// the file it leads to. The file is opened once, and the file checked and read is the one opened:
// no one can swap it between the check and the read. An agent running as another user (keyway
// service, a contained command, which never sees keyway's home) then cannot write one; an agent
// running as keyway's own user can write whatever keyway can, and that is said in
// docs/policy-as-code.md.

/**
 * The text of a policy file, or why it cannot be trusted. `home`: the file must really be in it
 * (links followed), where a contained agent never sees it: a project folder it may write is not.
 */
export function readTrustedPolicyFile(path: string, home?: string, uid = process.getuid?.()): { text: string } | { refused: string } {
  let fd: number;
  try {
    // Non-blocking: a FIFO in the policy's place is refused below, not waited on forever.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { refused: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const file = fstatSync(fd);
    if (!file.isFile()) return { refused: 'it is not a regular file' };
    if (home !== undefined) {
      const real = openedPath(fd, path);
      const within = realpathSync(home);
      if (!real.startsWith(within.endsWith(sep) ? within : `${within}${sep}`)) {
        return {
          refused: `it is outside keyway's home ${within}, where an agent may write it (a contained one its working folder): keep policies under the home`,
        };
      }
    }
    if (uid !== undefined) {
      // The folders of the path as given (links in it followed to see each folder), then the real one.
      const given = untrustedFolders(dirname(resolve(path)), uid, statSync);
      if (given !== undefined) return { refused: given };
      const real = openedPath(fd, path);
      const own = untrustedEntry(file, 'the file', uid) ?? untrustedFolders(dirname(real), uid, lstatSync);
      if (own !== undefined) return { refused: own };
    }
    return { text: readFileSync(fd, 'utf8') };
  } catch (err) {
    return { refused: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
}

/** Where the opened file really is: Linux says so of the descriptor; elsewhere the path resolved. */
function openedPath(fd: number, path: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(path);
  }
}

function untrustedFolders(from: string, uid: number, stat: (path: string) => Stats): string | undefined {
  for (let at = from; ; at = dirname(at)) {
    const why = untrustedEntry(stat(at), `its folder ${at}`, uid);
    if (why !== undefined) return why;
    if (at === dirname(at)) return undefined;
  }
}

function untrustedEntry(st: Stats, what: string, uid: number): string | undefined {
  if (st.uid !== uid && st.uid !== 0) return `${what} belongs to uid ${st.uid}, not to keyway's user (${uid}) or root`;
  const stickyRoot = st.uid === 0 && (st.mode & 0o1000) !== 0;
  if ((st.mode & 0o022) !== 0 && !stickyRoot) return `${what} is writable by ${(st.mode & 0o002) !== 0 ? 'every user' : 'its group'}`;
  return undefined;
}
