// The audit log's space reservation (src/audit/file/room.ts) as arithmetic: when an injected request may
// be promised its line, when a line nobody reserved may take room, and how the limits are read.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FileSizeLimit } from '../../src/audit/file/proc-limits.ts';
import { serializeEvent } from '../../src/audit/record.ts';
import {
  canAdmit,
  CHAIN_OVERHEAD,
  fitsUnpromised,
  LINE_BOUND,
  lineCost,
  parseFsizeLimit,
  RESUME_SPARE,
  ROOM_FLOOR,
  roomLeft,
  type RoomFacts,
  shortOfRoom,
  spareRoom,
} from '../../src/audit/file/room.ts';

const facts = (over: Partial<RoomFacts>): RoomFacts => ({
  fileSize: 0,
  fsizeLimit: Infinity,
  maxBytes: 0,
  diskFree: Infinity,
  appendedSinceStatfs: 0,
  ...over,
});
const none = { pendingBytes: 0, reservedLines: 0 };

describe('roomLeft', () => {
  it('is the smaller of the disk free space (less our appends since statfs) and the file-size limit less the file', () => {
    expect(roomLeft(facts({ diskFree: 10_000_000, appendedSinceStatfs: 1_000 }))).toBe(9_999_000);
    expect(roomLeft(facts({ fsizeLimit: 5_000_000, fileSize: 4_000_000 }))).toBe(1_000_000);
    expect(roomLeft(facts({ diskFree: 700, fsizeLimit: 5_000, fileSize: 4_000 }))).toBe(700);
    expect(roomLeft(facts({}))).toBe(Infinity);
  });

  it('ignores the file-size limit when rotation starts a new file well before it (the limit is per file)', () => {
    expect(roomLeft(facts({ fsizeLimit: 100_000_000, fileSize: 99_999_000, maxBytes: 10_000_000 }))).toBe(Infinity);
    // Rotation at (or near) the limit itself does not help: the file can still reach the limit.
    expect(roomLeft(facts({ fsizeLimit: 10_000_000, fileSize: 9_999_000, maxBytes: 10_000_000 }))).toBe(1_000);
  });

  it('goes below zero once the file is past a limit lowered under it (nothing is admitted)', () => {
    expect(roomLeft(facts({ fsizeLimit: 100, fileSize: 4_000 }))).toBe(-3_900);
    expect(canAdmit(-3_900, none)).toBe(false);
  });
});

describe('canAdmit', () => {
  it('admits while one more LINE_BOUND still leaves ROOM_FLOOR, counting pending bytes and reserved lines', () => {
    const exact = ROOM_FLOOR + LINE_BOUND;
    expect(canAdmit(exact, none)).toBe(true);
    expect(canAdmit(exact - 1, none)).toBe(false);
    expect(canAdmit(exact + 500, { pendingBytes: 500, reservedLines: 0 })).toBe(true);
    expect(canAdmit(exact + 500, { pendingBytes: 501, reservedLines: 0 })).toBe(false);
    expect(canAdmit(exact + 3 * LINE_BOUND, { pendingBytes: 0, reservedLines: 3 })).toBe(true);
    expect(canAdmit(exact + 3 * LINE_BOUND - 1, { pendingBytes: 0, reservedLines: 3 })).toBe(false);
  });

  it('never promises more than the room: admitting until refused leaves every promised line room to spare', () => {
    for (const room of [0, ROOM_FLOOR, ROOM_FLOOR + LINE_BOUND, 5 * 1024 * 1024 + 12_345, 64 * 1024 * 1024]) {
      const promised = { pendingBytes: 4_321, reservedLines: 0 };
      for (let i = 0; i < 10_000 && canAdmit(room, promised); i++) promised.reservedLines += 1;
      const used = promised.pendingBytes + promised.reservedLines * LINE_BOUND;
      expect(room - used, `room ${room}`).toBeGreaterThanOrEqual(room >= 4_321 + LINE_BOUND + ROOM_FLOOR ? ROOM_FLOOR : -Infinity);
      expect(canAdmit(room, promised)).toBe(false);
    }
  });
});

describe('shortOfRoom', () => {
  it('refuses from the first spare byte missing and admits again only once RESUME_SPARE is back', () => {
    const exact = ROOM_FLOOR + LINE_BOUND;
    expect(shortOfRoom(false, spareRoom(exact, none))).toBe(false);
    expect(shortOfRoom(false, spareRoom(exact - 1, none))).toBe(true);
    // Short: a few lines appended at less than their promised cost give a little room back; still short.
    expect(shortOfRoom(true, spareRoom(exact, none))).toBe(true);
    expect(shortOfRoom(true, spareRoom(exact + RESUME_SPARE - 1, none))).toBe(true);
    expect(shortOfRoom(true, spareRoom(exact + RESUME_SPARE, none))).toBe(false);
    expect(shortOfRoom(true, spareRoom(exact + RESUME_SPARE + 2 * LINE_BOUND, { pendingBytes: 0, reservedLines: 2 }))).toBe(false);
  });

  it('does not flap: room that rises and falls by less than RESUME_SPARE after a refusal keeps refusing', () => {
    let short = false;
    const answers: boolean[] = [];
    for (const extra of [LINE_BOUND, 0, -1, 0, 1_000, RESUME_SPARE / 2, 0, RESUME_SPARE, 0, -1]) {
      short = shortOfRoom(short, spareRoom(ROOM_FLOOR + LINE_BOUND + extra, none));
      answers.push(short);
    }
    expect(answers).toEqual([false, false, true, true, true, true, true, false, false, true]);
  });
});

describe('fitsUnpromised', () => {
  it('lets a line nobody reserved use the floor but never the room promised to injected requests', () => {
    const promised = { pendingBytes: 1_000, reservedLines: 2 };
    const room = 1_000 + 2 * LINE_BOUND + 600;
    expect(fitsUnpromised(room, promised, 600)).toBe(true);
    expect(fitsUnpromised(room, promised, 601)).toBe(false);
    expect(canAdmit(room, promised)).toBe(false);
  });
});

describe('lineCost and LINE_BOUND', () => {
  it('counts a body with room for its chain fields and newline', () => {
    expect(lineCost('{"a":1}')).toBe(7 + CHAIN_OVERHEAD);
    // seq up to 16 digits, two 64-hex hashes, field names, newline
    expect(`,"seq":${Number.MAX_SAFE_INTEGER},"prev":"${'0'.repeat(64)}","hash":"${'0'.repeat(64)}"}\n`.length).toBeLessThanOrEqual(CHAIN_OVERHEAD);
  });

  it("bounds a line whose request head used all of Node's 16 KiB in its path and override headers", () => {
    const path = `/${'a'.repeat(16 * 1024)}`;
    const overrides = `/${'"'.repeat(16 * 1024)}`; // every byte escaped
    const body = serializeEvent({
      ts: new Date().toISOString(),
      id: 'x'.repeat(36),
      agent: 'agent-'.repeat(20),
      grant: 'grant-'.repeat(20),
      decision: 'inject',
      code: 'audit_unavailable',
      method: 'PROPFIND',
      host: 'h'.repeat(253),
      port: 65535,
      path,
      status: 503,
      duration_ms: 123456.78,
      refreshed: true,
      client: 'ffff:'.repeat(8),
      path_override: overrides,
      method_override: 'GET,'.repeat(50),
      rule: 'r'.repeat(200),
      policy_mode: 'warn',
      policy: `sha256:${'f'.repeat(64)}`,
      replay: 'skipped: body over 1 MiB',
      replayed: true,
      leak_redacted: 1e9,
    });
    expect(lineCost(body)).toBeLessThan(LINE_BOUND);
  });
});

describe('parseFsizeLimit', () => {
  it('reads the soft "Max file size" of /proc/self/limits', () => {
    const limits = (soft: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax file size             ${soft}            unlimited            bytes\nMax data size             unlimited            unlimited            bytes\n`;
    expect(parseFsizeLimit(limits('unlimited'))).toBe(Infinity);
    expect(parseFsizeLimit(limits('1048576'))).toBe(1_048_576);
    expect(parseFsizeLimit(limits('0'))).toBe(0);
    expect(parseFsizeLimit('')).toBe(Infinity);
    expect(parseFsizeLimit(limits('bogus'))).toBe(Infinity);
  });
});

describe('FileSizeLimit', () => {
  it('reads the limit through one kept handle and sees a prlimit from outside at once', async () => {
    const reader = new FileSizeLimit();
    try {
      expect(await reader.read()).toBe(parseFsizeLimit(readFileSync('/proc/self/limits', 'utf8')));
      const fdsBefore = readdirSync('/proc/self/fd').length;
      const previous = parseFsizeLimit(readFileSync('/proc/self/limits', 'utf8'));
      const soft = 987_654_321;
      // The soft limit only ("N:" leaves the hard one as it is), put back afterwards.
      execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${soft}:`]);
      try {
        expect(await reader.read()).toBe(soft);
      } finally {
        execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${Number.isFinite(previous) ? previous : 'unlimited'}:`]);
      }
      expect(await reader.read()).toBe(previous);
      // No descriptor opened per read.
      expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore);
    } finally {
      reader.close();
    }
    // After close, a read still answers (opening and closing the file itself).
    expect(await reader.read()).toBe(parseFsizeLimit(readFileSync('/proc/self/limits', 'utf8')));
  });
});
