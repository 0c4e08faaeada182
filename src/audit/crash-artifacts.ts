// What verify reports as crash artifacts rather than problems: a torn last line (the live file's
// last bytes, unterminated: an append cut short by a crash, not yet kept aside), and each `recovered`
// line a writer put in the place of one (file/torn-tail.ts). Neither excuses anything else: every
// whole line is checked as always, an unterminated line anywhere but at the very end of the log still
// fails, and a `recovered` line must stand where it says the torn bytes were, name a kept-aside file
// keyway would name, and, when that file is there, match its length and SHA-256. So someone who can
// write the log gains nothing by writing `recovered` lines: they explain only bytes that are no
// longer in the chain, and a line of the chain edited or removed fails as before.

import { lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hashFile, isTornName, RECOVERED_ACTION } from './file/torn-tail.ts';
import type { AuditLine } from './record.ts';

export interface CrashArtifact {
  /** `torn`: the log's last bytes, with no newline after them (keyway keeps them aside when it next opens the log); `recovered`: kept aside and recorded. */
  kind: 'torn' | 'recovered';
  /** The log file they are (or were) in, when several files were verified. */
  file?: string;
  /** 1-based line number: the torn line's, or the `recovered` line's. */
  line: number;
  /** Byte offset in that file where the torn bytes started. */
  offset: number;
  bytes: number;
  /** For `recovered`: its seq, the kept-aside file's name, and whether that file is still there (its bytes matched). */
  seq?: number;
  kept?: string;
  kept_file?: 'matches' | 'missing';
}

const HEX64 = /^[0-9a-f]{64}$/;
// A log can carry any number of `recovered` lines; the report lists this many (all are checked).
const MAX_LISTED = 100;

interface Pending {
  artifact: CrashArtifact;
  sha256: string;
}

/** Collects crash artifacts during a verify walk, then checks the kept-aside files. */
export class CrashArtifacts {
  readonly #logPath: string;
  readonly #pending: Pending[] = [];
  readonly #torn: CrashArtifact[] = [];

  /** `logPath`: the live log's path; kept-aside files are beside it. */
  constructor(logPath: string) {
    this.#logPath = logPath;
  }

  /** The live file's unterminated last line. */
  torn(line: number, offset: number, bytes: number, file?: string): void {
    this.#torn.push(withFile({ kind: 'torn', line, offset, bytes }, file));
  }

  /** A chained line with a `recovered` field, at `offset` in its file: null, or what is wrong with it. */
  recovered(rec: AuditLine, line: number, offset: number, file?: string): string | null {
    const r = rec.recovered as unknown;
    if (typeof r !== 'object' || r === null) return 'a recovered line whose record of the torn bytes is not an object';
    const { file: kept, offset: at, bytes, sha256 } = r as Record<string, unknown>;
    if (rec.decision !== 'admin' || rec.action !== RECOVERED_ACTION) return `a line with a record of torn bytes is not keyway's ${RECOVERED_ACTION} line`;
    if (typeof kept !== 'string' || !isTornName(this.#logPath, kept)) return 'a recovered line names a kept-aside file keyway would not write';
    if (!Number.isSafeInteger(bytes) || (bytes as number) < 1 || typeof sha256 !== 'string' || !HEX64.test(sha256)) {
      return 'a recovered line with no valid length or SHA-256 of the torn bytes';
    }
    if (at !== offset)
      return `a recovered line says the torn bytes were at offset ${String(at)}, but it stands at offset ${offset}: lines before it were changed`;
    this.#pending.push({ artifact: withFile({ kind: 'recovered', line, offset, bytes: bytes as number, seq: rec.seq, kept }, file), sha256 });
    return null;
  }

  /** Checks every kept-aside file named; `report` hears each one whose bytes differ from its line. */
  async check(report: (line: number, reason: string, file?: string) => void): Promise<CrashArtifact[]> {
    const out: CrashArtifact[] = [...this.#torn];
    for (const { artifact, sha256 } of this.#pending) {
      const path = join(dirname(this.#logPath), artifact.kept!);
      const exists = await fileExists(path);
      if (!exists) artifact.kept_file = 'missing';
      else if ((await hashFile(path, artifact.bytes)) === sha256) artifact.kept_file = 'matches';
      else {
        report(
          artifact.line,
          `the torn bytes kept aside in ${artifact.kept} are not the ones this recovered line records (changed, replaced or not a regular file)`,
          artifact.file,
        );
        continue;
      }
      if (out.length < MAX_LISTED) out.push(artifact);
    }
    return out;
  }
}

function withFile(artifact: CrashArtifact, file: string | undefined): CrashArtifact {
  return file === undefined ? artifact : { ...artifact, file };
}

async function fileExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}
