// Audit lines a key change owes (issue 60): a rotation finished by the next open, a rewrap finished
// by it, or a `key rotate` killed after its key was made current and before its line. The change is
// made by code below the audit log (credentials may not import audit, nor app), so it leaves a note
// in data/key-lines-owed/, written before the change itself; whoever next opens the audit log
// (app/owed-key-lines.ts: keyway start, any command that writes a line) writes the line and only
// then removes the note. A crash anywhere leaves the note, so the line is never lost; it is written
// once: a note is named after the change it owes (the same change noted twice is one note), and a
// writer claims it by a rename before writing, so two processes opening the log at once (a proxy's
// workers) do not both write it.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeNewFile } from '../../files/atomic-write.ts';

const DIR = 'key-lines-owed';
const NOTE = /^(key\.rotate|key\.rewrap)-[0-9a-f]{16}\.json$/;
const CLAIMED = /^((?:key\.rotate|key\.rewrap)-[0-9a-f]{16}\.json)\.claimed-\d+-[0-9a-f]{8}$/;
/**
 * A claim older than this was left by a writer that died between claiming and writing (writing one
 * line takes milliseconds, or the audit lock's 7 s wait at most): it is taken over.
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

export interface ClaimedKeyLine {
  line: OwedKeyLine;
  /** The line is written: the note goes. */
  settled(): Promise<void>;
  /** The line could not be written: the note is given back for the next writer. */
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
  const path = join(dir, `${line.action}-${id}.json`);
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

/** Whether any line is owed (one readdir; nothing when the folder does not exist). */
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
    const original = NOTE.test(name) ? name : await abandonedClaim(dir, name);
    if (original === undefined) continue;
    const mine = join(dir, `${original}.claimed-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(join(dir, name), mine);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another writer claimed it first
      throw err;
    }
    let line: OwedKeyLine;
    try {
      line = JSON.parse(await readFile(mine, 'utf8')) as OwedKeyLine;
    } catch {
      // Not a note keyway wrote whole (writeNewFile makes it whole or not at all): left for a person to see.
      await rename(mine, join(dir, original)).catch(() => undefined);
      continue;
    }
    claimed.push({
      line,
      settled: async () => {
        await unlink(mine);
        // Another writer settling its last note at the same moment may have removed the folder.
        const gone = (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        };
        await syncDir(dir).catch(gone);
        // The folder goes with its last note, so keyLinesOwed is one stat on a home that owes nothing.
        if ((await readdir(dir).catch(() => ['?'])).length === 0) await rmdir(dir).catch(() => undefined);
      },
      giveBack: () => rename(mine, join(dir, original)).catch(() => undefined),
    });
  }
  return claimed.sort((a, b) => a.line.at.localeCompare(b.line.at));
}

/** A claim left by a writer that died holding it: the note's own name, else undefined. */
async function abandonedClaim(dir: string, name: string): Promise<string | undefined> {
  const match = CLAIMED.exec(name);
  if (match === null) return undefined;
  // A rename sets ctime: the claim's age.
  const since = await stat(join(dir, name)).then(
    (s) => Date.now() - s.ctimeMs,
    () => -1,
  );
  return since > CLAIM_ABANDONED_MS ? match[1] : undefined;
}
