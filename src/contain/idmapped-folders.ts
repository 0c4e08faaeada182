// keyway run --contain as root: the command runs as an unprivileged uid (contain/command-user.ts),
// yet the folder it was started in, and each --allow-write folder, must stay writable to it when
// root owns them. An idmapped mount (Linux 5.12+) does that without touching a file: through it,
// what root owns on disk is the command's uid, and what the command writes lands on disk as root's.
// Nothing else of root's changes hands. A folder above those that uid cannot pass through (/root,
// 0700, above /root/project) is idmapped too, and stays read-only under bwrap: the command may
// then read root's home as a user's agent reads the user's (the credential files hidden as ever).
//
// util-linux 2.39's `mount --bind -o X-mount.idmap=…` makes such a mount, but Debian 12 ships 2.38,
// and Node has no way to make the three system calls (open_tree, mount_setattr, move_mount). So
// this short Python program (Python 3 is on every Linux this runs on) does, run as root in the
// containment's own mount namespace (unshare --mount, so the host never sees the mounts), and then
// execs the rest of the chain. The system call numbers are the same on x86-64 and arm64 (all calls
// added since Linux 5.1 share one table).

export const IDMAP_PROGRAM = String.raw`
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
uid, gid, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
folders, rest = sys.argv[4:4 + count], sys.argv[4 + count:]

def fail(what):
    print('keyway: contain_unavailable: ' + what + ': ' + os.strerror(ctypes.get_errno()), file=sys.stderr)
    sys.exit(2)

# A user namespace whose map is 0 -> uid: the idmapping the mounts take (root's files appear as
# uid's; uid's writes land as root's). Its process only holds it open while the mounts are made.
ready_r, ready_w = os.pipe()
done_r, done_w = os.pipe()
holder = os.fork()
if holder == 0:
    os.close(ready_r); os.close(done_w)
    if libc.unshare(0x10000000) != 0:
        os._exit(1)
    os.write(ready_w, b'1')
    os.read(done_r, 1)
    os._exit(0)
os.close(ready_w); os.close(done_r)
if os.read(ready_r, 1) != b'1':
    fail('cannot make a user namespace for the idmapped folder')
with open('/proc/%d/uid_map' % holder, 'w') as f: f.write('0 %d 1\n' % uid)
with open('/proc/%d/setgroups' % holder, 'w') as f: f.write('deny')
with open('/proc/%d/gid_map' % holder, 'w') as f: f.write('0 %d 1\n' % gid)
userns = os.open('/proc/%d/ns/user' % holder, os.O_RDONLY)

class MountAttr(ctypes.Structure):
    _fields_ = [('attr_set', ctypes.c_uint64), ('attr_clr', ctypes.c_uint64), ('propagation', ctypes.c_uint64), ('userns_fd', ctypes.c_uint64)]

AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = -100, 0x1000, 0x8000, 1, 0o2000000
MOUNT_ATTR_IDMAP, MOVE_MOUNT_F_EMPTY_PATH = 0x100000, 4
SYS_open_tree, SYS_move_mount, SYS_mount_setattr = 428, 429, 442
for folder in folders:
    # The folder with the mounts below it (an idmapped folder made before, inside it), the idmap
    # set on the top one only: a mount is never idmapped twice.
    tree = libc.syscall(SYS_open_tree, AT_FDCWD, folder.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
    if tree < 0: fail('open_tree ' + folder)
    attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
    if libc.syscall(SYS_mount_setattr, tree, b'', AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        fail('an idmapped mount of ' + folder + ' (its filesystem may not support one)')
    if libc.syscall(SYS_move_mount, tree, b'', AT_FDCWD, folder.encode(), MOVE_MOUNT_F_EMPTY_PATH) < 0: fail('move_mount ' + folder)
    os.close(tree)
os.write(done_w, b'1')
os.waitpid(holder, 0)
os.execvp(rest[0], rest)
`;

/**
 * The command line that makes the idmapped folders, then runs `then`. `folders`: the ones the
 * command writes first, then the folders above them it must pass through, deepest first (bwrap
 * mounts the host read-only over all but the writable ones).
 */
export function idmappedFolders(uid: number, gid: number, folders: readonly string[], then: readonly string[]): string[] {
  return ['python3', '-c', IDMAP_PROGRAM, String(uid), String(gid), String(folders.length), ...folders, ...then];
}
