import { CREDENTIAL_PATHS } from '../../contain/sandbox.ts';

// Where a profile may keep an agent's state (writable under --contain, made if missing). Admitted:
// a path in the home, written `~/NAME/…`, whose first name is hidden (`~/.claude`, `~/.claude.json`)
// or that sits inside one of the folders tools share for their own state (`~/.config/NAME`,
// `~/.cache/NAME`, `~/.local/share/NAME`, `~/.local/state/NAME`). Each name is plain: letters, digits
// and `._+-@`, never `.` or `..`. Refused even so: a shared folder itself, the user's credential
// files (contain/sandbox.ts CREDENTIAL_PATHS), keyway's default home, `~/.local/bin` (on PATH), and
// the files a shell or git reads when it starts (a contained agent writing there would run as the
// user later). What depends on the machine (keyway's actual home, contain.hide, PATH, links) is
// checked when the profile is used (state.ts).

/** Folders that hold many tools' state: a profile names a folder of its own inside one, never one of these. */
const SHARED = ['.config', '.cache', '.local', '.local/share', '.local/state'];
/** The shared folders an agent's own folder may sit in (`~/.local` holds bin/, which is on PATH). */
const OWN_INSIDE = ['.config', '.cache', '.local/share', '.local/state'];

/** Read as code or configuration when a shell or git starts, or a program runs by name. */
const STARTUP = [
  '.bashrc',
  '.bash_profile',
  '.bash_login',
  '.bash_logout',
  '.profile',
  '.zshrc',
  '.zshenv',
  '.zprofile',
  '.zlogin',
  '.zlogout',
  '.inputrc',
  '.gitconfig',
  '.config/git',
  '.config/fish',
  '.config/environment.d',
  '.config/systemd',
  '.config/autostart',
  '.local/bin',
  // keyway's own home, where no --home or KEYWAY_HOME moves it.
  '.keyway',
];

const NAME = /^[A-Za-z0-9._+@-]+$/;

/** `a` is `b` or inside it (both relative to the home, `/`-separated). */
function within(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`);
}

/** Why `text` is not a state path a profile may name, or undefined. */
export function statePathProblem(text: string): string | undefined {
  if (text === '~' || text === '~/') return "the home folder itself: name a folder or file of the agent's own in it (~/.agent)";
  if (!text.startsWith('~/')) return 'expected a path in the home, written ~/NAME';
  const relative = text.slice(2);
  const names = relative.split('/');
  if (names.some((name) => name === '' || name === '.' || name === '..' || !NAME.test(name))) {
    return 'expected ~/ then plain names (letters, digits, . _ + - @), no empty, . or .. part';
  }
  if (SHARED.includes(relative)) return `~/${relative} holds many programs' state: name the agent's own folder inside it`;
  for (const credential of CREDENTIAL_PATHS) {
    if (within(relative, credential))
      return `${relative === credential ? 'is' : 'inside'} ~/${credential}, a credential path keyway hides from contained commands`;
    if (within(credential, relative)) return `holds ~/${credential}, a credential path keyway hides from contained commands`;
  }
  for (const startup of STARTUP) {
    if (within(relative, startup) || within(startup, relative)) {
      return startup === '.keyway'
        ? "keyway's own home"
        : `~/${startup} is read when a shell, git or a program by name starts: an agent writing it would run as you later`;
    }
  }
  const inShared = OWN_INSIDE.some((shared) => relative.startsWith(`${shared}/`));
  if (!inShared && (!names[0]!.startsWith('.') || names[0] === '.local')) {
    return 'expected a hidden name in the home (~/.agent) or one inside ~/.config, ~/.cache, ~/.local/share or ~/.local/state';
  }
  return undefined;
}
