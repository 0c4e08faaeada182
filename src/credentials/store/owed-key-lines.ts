// Audit lines a key change owes (issue 60): a rotation finished by the next open, a rewrap finished
// by it, or a `key rotate` killed after its key was made current and before its line. The change is
// made by code below the audit log (credentials may not import audit, nor app), so it leaves a note
// in data/key-lines-owed/, written before the change itself; whoever next opens the audit log
// (app/owed-key-lines.ts: keyway start, any command that writes a line) writes the line and only
// then removes the note. A crash anywhere leaves the note, so the line is never lost.
//
// It is written once (issue 86), whatever moment a writer is killed at:
// - a note is named after the change it owes: the same change noted twice is one note;
// - a writer claims a note by a rename before writing, so two processes opening the log at once (a
//   proxy's workers) do not both write it;
// - before writing, the claimant records in the note the id its line will carry (`tried`) and who
//   it is (`holder`). A writer killed between its line and the note's removal leaves a claim saying
//   which line it wrote: whoever takes the claim over looks for that id in the audit log first, and
//   finds it, removes the note and writes nothing. Killed before the line, the id is not found and
//   the line is written (under a new id, also recorded first).
// A claim is taken over once its claimant is certainly gone (lock-holder.ts: on this host, not
// running, or another boot), at once; one that recorded no claimant (killed right after claiming,
// before anything was written), or one on another host sharing the folder, after CLAIM_ABANDONED_MS.
// A live claimant's claim is never taken: one whose write failed keeps it, since its audit writer
// keeps the line and writes it when the log takes lines again; the note is finished once it is gone.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeNewFile } from '../../files/atomic-write.ts';
import { asHolder, holderAlive, holderGone, type LockHolder, thisHolder } from '../../files/lock-holder.ts';

const DIR = 'key-lines-owed';
const NOTE = /^(key\.rotate|key\.rewrap)-[0-9a-f]{16}\.json$/;
const CLAIMED = /^((?:key\.rotate|key\.rewrap)-[0-9a-f]{16}\.json)\.claimed-\d+-[0-9a-f]{8}$/;
/** A temporary file of writeNewFile's or of a claim's record (`.NAME…tmp`): left by a writer killed making it. */
const TEMP = /^\..+\.tmp$/;
/**
 * A claim that names no claimant (killed between claiming and recording itself), or one whose
 * claimant cannot be judged (another host), is taken over after this long: writing one line takes
 * milliseconds, or the audit lock's 7 s wait at most. Also how old a temporary file must be to go.
 */
const CLAIM_ABANDONED_MS = 60_000;

export type OwedAction = 'key.rotate' | 'key.rewrap';

/** Who finishes a key change: its own command (with its actor), or the next open that finds it cut short. */
export type Finisher = { actor: string } | 'open';

/** What a note holds: the line's admin fields, never a key. */
export interface OwedKeyLine {
  action: OwedAction;
  changed: string;
  /** Who made the change: the command's actor (cli/audit-change.ts cliActor); absent when the next open finished it. */
  actor?: string | undefined;
  /** How it was finished, when not by its own command (a rotation cut short, finished at the next open). */
  message?: string | undefined;
  /** When the change was finished. */
  at: string;
}

/** A note as a claim leaves it: the ids its line was (or was about to be) written under, and the last claimant. */
interface NoteText extends OwedKeyLine {
  tried?: string[] | undefined;
  holder?: LockHolder | undefined;
}

export interface ClaimedKeyLine {
  line: OwedKeyLine;
  /** The ids a line of this note may already carry in the audit log (earlier claimants' attempts). */
  tried: readonly string[];
  /**
   * Records a new id for the line, and this process as its claimant; returns the id to write it
   * under, or undefined when another writer took the claim over meanwhile (it is theirs to write).
   */
  attempt(): Promise<string | undefined>;
  /** The line is in the log (written now, or found under a tried id): the note goes. */
  settled(): Promise<void>;
  /** Not attempted after all (an earlier line failed): the note is given back for the next writer. */
  giveBack(): Promise<void>;
}

function owedDir(dataDir: string): string {
  return join(dataDir, DIR);
}

/**
 * Notes a line owed for one change. `change` names the change (the pending key file's text, the
 * wrapped key's): the same change noted again (a promotion retried after a crash) is the same note.
 */
export async function oweKeyLine(dataDir: string, line: Omit<OwedKeyLine, 'at'>, change: string): Promise<string> {
  const dir = owedDir(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A digest of a digest: the note's name says nothing of the key file it is named after.
  const id = createHash('sha256').update('keyway owed key line v1\n').update(createHash('sha256').update(change).digest()).digest('hex').slice(0, 16);
  const name = `${line.action}-${id}.json`;
  const path = join(dir, name);
  // Already claimed by a writer: the same note, under its claim's name.
  if ((await readdir(dir).catch(() => [] as string[])).some((n) => n.startsWith(`${name}.claimed-`))) return path;
  const text = `${JSON.stringify({ ...line, at: new Date().toISOString() })}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeNewFile(path, text, 0o600);
      await syncDir(dir);
      return path;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return path;
      // The folder went with another process's last settled note between our mkdir and this write.
      if (code !== 'ENOENT' || attempt > 0) throw err;
      await mkdir(dir, { recursive: true, mode: 0o700 });
    }
  }
}

/** Drops a note whose change did not happen after all (the promotion failed). */
export async function dropOwedNote(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

/** Whether any line is owed (one stat; nothing when the folder does not exist). */
export function keyLinesOwed(dataDir: string): boolean {
  return existsSync(owedDir(dataDir));
}

/** The owed lines this process claimed, oldest change first; none when another process holds them. */
export async function claimOwedKeyLines(dataDir: string): Promise<ClaimedKeyLine[]> {
  const dir = owedDir(dataDir);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const claimed: ClaimedKeyLine[] = [];
  for (const name of names) {
    if (TEMP.test(name)) {
      await removeIfOld(join(dir, name));
      continue;
    }
    const original = NOTE.test(name) ? name : await abandonedClaim(dir, name);
    if (original === undefined) continue;
    let mine = claimPath(dir, original);
    try {
      await rename(join(dir, name), mine);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another writer claimed it first
      throw err;
    }
    let note: NoteText;
    try {
      note = JSON.parse(await readFile(mine, 'utf8')) as NoteText;
    } catch {
      // Not a note keyway wrote whole (writeNewFile makes it whole or not at all): left for a person to see.
      await rename(mine, join(dir, original)).catch(() => undefined);
      continue;
    }
    const { tried = [], holder: _previous, ...line } = note;
    claimed.push({
      line,
      tried,
      async attempt() {
        const id = randomUUID();
        tried.push(id);
        // Moved to a new name first: a claim taken over meanwhile fails here (ENOENT) before anything is written.
        const next = claimPath(dir, original);
        try {
          await rename(mine, next);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
        mine = next;
        const temp = join(dir, `.${original}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
        await writeFile(temp, `${JSON.stringify({ ...line, tried, holder: thisHolder() })}\n`, { mode: 0o600, flag: 'wx' });
        await rename(temp, mine);
        // Recorded for good before the line can be: a power cut must not keep the line and lose its id.
        await syncDir(dir);
        return id;
      },
      settled: async () => {
        // Another writer settling its last note at the same moment may have removed the folder; one
        // that took this claim over meanwhile (its last claimant gone) finds the line and removes it.
        const gone = (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        };
        await unlink(mine).catch(gone);
        await syncDir(dir).catch(gone);
        // The folder goes with its last note, so keyLinesOwed is one stat on a home that owes nothing.
        if ((await readdir(dir).catch(() => ['?'])).length === 0) await rmdir(dir).catch(() => undefined);
      },
      giveBack: () => rename(mine, join(dir, original)).catch(() => undefined),
    });
  }
  return claimed.sort((a, b) => a.line.at.localeCompare(b.line.at));
}

function claimPath(dir: string, original: string): string {
  return join(dir, `${original}.claimed-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * A claim whose claimant is gone: the note's own name, else undefined. Gone: the claimant it
 * recorded is certainly gone (at once), or it recorded none, or one on another host, and the claim
 * is CLAIM_ABANDONED_MS old. A claimant certainly alive keeps it, however old.
 */
async function abandonedClaim(dir: string, name: string): Promise<string | undefined> {
  const match = CLAIMED.exec(name);
  if (match === null) return undefined;
  const path = join(dir, name);
  const holder = await readFile(path, 'utf8').then(
    (text) => asHolder((JSON.parse(text) as NoteText).holder),
    () => undefined,
  );
  if (holder !== undefined && holderGone(holder)) return match[1];
  if (holder !== undefined && holderAlive(holder)) return undefined;
  // A rename sets ctime: the claim's age.
  const since = await stat(path).then(
    (s) => Date.now() - s.ctimeMs,
    () => -1,
  );
  return since > CLAIM_ABANDONED_MS ? match[1] : undefined;
}

async function removeIfOld(path: string): Promise<void> {
  const since = await stat(path).then(
    (s) => Date.now() - s.mtimeMs,
    () => -1,
  );
  if (since > CLAIM_ABANDONED_MS) await unlink(path).catch(() => undefined);
}
