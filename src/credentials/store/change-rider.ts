// The audit line a change owes, carried in the store write that makes the change (issue 86).
//
// A change to what keyway may send (a grant, an agent, a secret) is made by a store write and then
// recorded by an audit line. A process killed between the two left the change live with no line,
// and `audit verify` passed. So the line is owed inside the change itself: while a change runs
// (`carryOwedLine`: the CLI's audited(), the admin API's router), every store write that changes
// something also writes an `owed-line:` record naming the line, in the same atomic write (the
// file's rename, the database's transaction). Once the line is written, the record is deleted.
// A crash in between leaves the record; whoever next opens the audit log writes the line
// (app/owed-change-lines.ts). A change that was never written leaves no record, so no line is
// written for a change that did not happen.
//
// The record names, from the start, the id its line is written under (`ids`), and each next open
// that takes it on adds the id it will write under before writing: a process killed after its line
// and before deleting the record leaves a record whose line the next open finds by id in the audit
// log, and then deletes without writing it again.
//
// This sits below the audit log (credentials may not import audit): the record holds the line's
// admin fields as data, never a value.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { type LockHolder, thisHolder } from '../../files/lock-holder.ts';
import type { StoreDraft } from './draft.ts';

export const OWED_LINE_PREFIX = 'owed-line:';

/** Which process made the change (or claimed its line), and when: a record whose process is gone is finished by the next open. */
export interface OwedLineOwner {
  holder: LockHolder;
  /** When (ISO): one on another host is presumed gone after a while (app/owed-change-lines.ts). */
  at: string;
}

/** This process, now, as an owner. */
export const ownerNow = (): OwedLineOwner => ({ holder: thisHolder(), at: new Date().toISOString() });

/** An audit line's admin fields, as the change's own writer would write them. */
export interface OwedChangeLine {
  action: string;
  client: string;
  actor?: string | undefined;
  agent: string | null;
  grant: string | null;
  changed?: string | undefined;
  method?: string | null | undefined;
  path?: string | null | undefined;
  host: string;
  port: number;
}

export interface OwedLineRecord {
  line: OwedChangeLine;
  owner: OwedLineOwner;
  /**
   * The ids a line of this change may carry in the audit log: its own writer's, then one for each
   * next open that took it on, each recorded before its line is written. Absent in a record an
   * older keyway wrote (its line is written without a look).
   */
  ids?: string[] | undefined;
  /** Set by the next open that took it on (app/owed-change-lines.ts). */
  claim?: OwedLineOwner | undefined;
}

/** One change's rider: its record id, the store it rides in, and whether the change is still running (past it, writes carry nothing). */
export interface ChangeRider {
  readonly id: string;
  /** The id the change's own audit line is written under (cli/audit-change.ts, admin/router.ts): the record names it. */
  readonly lineId: string;
  readonly record: OwedLineRecord;
  /** The home's store: a write the change makes to another store (`store copy`'s target) carries nothing. */
  readonly on: object;
  open: boolean;
}

const riding = new AsyncLocalStorage<ChangeRider>();

/** A rider for one change's line in `store`, the home's (not yet carried: `carryOwedLine`). */
export function riderFor(line: OwedChangeLine, store: object): ChangeRider {
  const lineId = randomUUID();
  return { id: `${OWED_LINE_PREFIX}${randomUUID()}`, lineId, record: { line, owner: ownerNow(), ids: [lineId] }, on: store, open: true };
}

/**
 * Runs `change` with every store write it makes carrying the rider's owed line. After the line is
 * written (or the refusal's, when the change threw), delete its record: `settleOwedLine`.
 */
export async function carryOwedLine<T>(rider: ChangeRider, change: () => Promise<T>): Promise<T> {
  try {
    return await riding.run(rider, change);
  } finally {
    // A timer or watcher the change started keeps this context: its later writes carry nothing.
    rider.open = false;
  }
}

/** The rider of the change this write to `store` belongs to, if any (read when update() is called). */
export function currentRider(store: object): ChangeRider | undefined {
  const rider = riding.getStore();
  return rider?.open === true && rider.on === store ? rider : undefined;
}

/** Adds the rider's record to a draft that changed something (store.ts, postgres-store.ts via runDraft). */
export function addRider(draft: StoreDraft, rider: ChangeRider | undefined): void {
  if (rider !== undefined) draft.set(rider.id, rider.record);
}

/** The line is written: its record goes. Whether a record was there (none: the change wrote nothing). */
export async function settleOwedLine(store: { update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R> }, rider: ChangeRider): Promise<boolean> {
  return store.update((draft) => draft.delete(rider.id));
}
