import type { Logger } from 'pino';
import type { StoreDraft } from '../../credentials/store/draft.ts';
import type { SlackWebApi } from './web-api.ts';

// What the Slack room's parts share (room.ts posts and updates the approvals' messages and the
// summary, alert-posts.ts the anomaly alerts, clicks.ts takes the clicks): the store record that
// says where an approval's message is, the room's settings, and how long a claim to post lasts.

export const SLACK_PREFIX = 'slack-message:';
export const slackRecordId = (approvalId: string) => `${SLACK_PREFIX}${approvalId}`;

/** Where an approval's message is, and what it last showed. */
export interface SlackMessageRecord {
  approval: string;
  /** Set once posted; absent while a process is posting it. */
  channel?: string | undefined;
  ts?: string | undefined;
  claimed_at: string;
  /** The approval's state the message shows (`pending` until updated). */
  shows: string;
}

export interface RoomSettings {
  channel: string;
  approvers: Readonly<Record<string, string>>;
  max_messages_per_minute: number;
}

/** The approvals channel, approvers and bound, from approvals.slack. */
export function roomSettings(
  slack: { channel: string; approvers: Record<string, string>; max_messages_per_minute: number } | undefined,
): RoomSettings | undefined {
  return slack === undefined ? undefined : { channel: slack.channel, approvers: slack.approvers, max_messages_per_minute: slack.max_messages_per_minute };
}

/** The store as the room reads and claims in it. */
export interface RoomStore {
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R>;
}

/** A claim not turned into a message this long (the process posting it died): claimable again. */
export const STALE_CLAIM_MS = 60_000;

/** What a part of the room posts with: Slack's Web API and the store, and the room's pause after a failure. */
export interface RoomPosting {
  api: SlackWebApi;
  botToken: () => string;
  store: RoomStore;
  logger: Logger;
  /** Slack failed: the room posts nothing new for a moment (no retry storm, no log flood). */
  pause(): void;
  paused(now: Date): boolean;
}
