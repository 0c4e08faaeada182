import { hash } from 'node:crypto';
import { EMPTY_SHA256 } from '../decide.ts';
import type { ApprovalRecord } from '../record.ts';
import type { SlackAlertRecord } from './alerts.ts';
import { ACTIONS } from './click.ts';

// The Slack message for an approval: what a person needs to decide, and the buttons. Whatever the
// agent wrote (the path, its purpose, the body preview) goes in plain_text, which Slack shows as
// written: no mention (<!channel>), no link, no formatting can be smuggled in by an agent. The
// preview is the desk's, already bounded and redacted (preview.ts), or none when the rule says so.

export interface SlackText {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}
export type SlackBlock = Record<string, unknown>;

/** The hash a button carries: the held body's SHA-256 (hex), so a click binds to that body only. */
export function bodyBinding(record: ApprovalRecord): string {
  const sha = record.body?.sha256 ?? EMPTY_SHA256;
  return /^[0-9a-f]{64}$/.test(sha) ? sha : hash('sha256', sha, 'hex');
}

const plain = (text: string): SlackText => ({ type: 'plain_text', text: bounded(text, 2_900), emoji: false });

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function who(record: ApprovalRecord): string {
  return record.chain !== undefined ? record.chain.join(' > ') : record.agent;
}

function where(record: ApprovalRecord): string {
  return `${record.host}${record.port !== 443 ? `:${record.port}` : ''}`;
}

function bodyLine(record: ApprovalRecord): string {
  const body = record.body;
  if (body === null) return 'Body: none';
  const head = `Body: ${body.bytes} bytes${body.type ? `, ${body.type}` : ''}, sha256 ${body.sha256.slice(0, 12)}…`;
  if (body.withheld) return `${head}\n(no preview: the rule says approval.preview: none)`;
  if (body.preview === null) return `${head}\n(not previewed: keyway previews JSON and form bodies only)`;
  return `${head}\n${body.preview}`;
}

/**
 * What asked: the rule (`Held by rule: agents.bot.rules[1] …`), or unusual use the agent's own
 * history shows (`Held by signal: new_method (method DELETE never used on grant github)`), or both
 * when a rule that asks met a signal. A hold by a signal names no rule: none asked.
 */
export function heldBy(record: ApprovalRecord): string {
  const parts = record.rule.split('; ');
  const rules = parts.filter((p) => !p.startsWith('anomaly: '));
  const signals =
    record.signals !== undefined
      ? record.signals.map((s) => `${s.name} (${s.why})`)
      : parts.filter((p) => p.startsWith('anomaly: ')).flatMap((p) => p.slice('anomaly: '.length).split(', '));
  const lines = [...(rules.length > 0 ? [`Held by rule: ${rules.join('; ')}`] : []), ...signals.map((s) => `Held by signal: ${s}`)];
  return lines.join('\n');
}

function facts(record: ApprovalRecord): SlackBlock[] {
  return [
    { type: 'header', text: plain(`keyway asks: ${record.method} ${where(record)}`) },
    {
      type: 'section',
      fields: [
        plain(`Agent: ${who(record)}`),
        plain(`Grant: ${record.grant}`),
        plain(`Method: ${record.method}${record.overrides ? ` (overrides: ${record.overrides})` : ''}`),
        plain(`Host: ${where(record)}`),
      ],
    },
    { type: 'section', text: plain(`Path: ${record.path}${record.tool ? `\nTool: ${record.tool}` : ''}`) },
    { type: 'section', text: plain(`${heldBy(record)}${record.purpose !== null ? `\nPurpose: ${record.purpose}` : ''}`) },
    { type: 'section', text: plain(bodyLine(record)) },
  ];
}

function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** A pending approval: the facts, and the buttons (the window's only when the rule gives one). */
export function pendingMessage(record: ApprovalRecord): { text: string; blocks: SlackBlock[] } {
  const value = `${record.id}:${bodyBinding(record)}`;
  const buttons: SlackBlock[] = [
    { type: 'button', action_id: ACTIONS.once, text: plain('Approve once'), style: 'primary', value },
    ...(record.window_ms > 0 ? [{ type: 'button', action_id: ACTIONS.window, text: plain(`Approve for ${formatWindow(record.window_ms)}`), value }] : []),
    { type: 'button', action_id: ACTIONS.deny, text: plain('Deny'), style: 'danger', value },
  ];
  return {
    text: `keyway approval ${record.id}: ${record.method} ${where(record)} for ${who(record)}`,
    blocks: [
      ...facts(record),
      { type: 'actions', block_id: 'keyway-answer', elements: buttons },
      { type: 'context', elements: [plain(`Approval ${record.id}, waiting until ${record.expires_at}`)] },
    ],
  };
}

/** How an approval ended, in one line: who decided and when, or why nobody did. */
export function outcomeLine(record: ApprovalRecord): string {
  const d = record.decision;
  if (d?.outcome === 'once') return `Approved once by ${d.by} at ${d.at}`;
  if (d?.outcome === 'window') return `Approved until ${d.until} by ${d.by} at ${d.at}`;
  if (d?.outcome === 'deny') return `Denied by ${d.by} at ${d.at}${d.reason ? `: ${d.reason}` : ''}`;
  return `${record.state[0]!.toUpperCase()}${record.state.slice(1)} at ${record.ended_at ?? record.expires_at}${record.ended_because ? `: ${record.ended_because}` : ''}`;
}

/** An approval no longer pending: the same facts, the buttons gone, the outcome in their place. */
export function endedMessage(record: ApprovalRecord): { text: string; blocks: SlackBlock[] } {
  const line = outcomeLine(record);
  return {
    text: `keyway approval ${record.id}: ${line}`,
    blocks: [...facts(record), { type: 'section', block_id: 'keyway-outcome', text: plain(line) }],
  };
}

/** The one message that counts what was not posted (past max_messages_per_minute), by every keyway on the store. */
export function summaryMessage(count: { approvals: number; alerts: number }): { text: string; blocks: SlackBlock[] } {
  const parts: string[] = [];
  if (count.approvals > 0)
    parts.push(
      `${count.approvals} more approval${count.approvals === 1 ? '' : 's'} waiting, not posted here (too many at once): answer them with \`keyway approvals list\` or the dashboard`,
    );
  if (count.alerts > 0)
    parts.push(`${count.alerts} unusual-use alert${count.alerts === 1 ? '' : 's'} not posted yet (each is on its request's audit line, \`signal\`)`);
  const text = parts.length === 0 ? 'keyway: no approvals are waiting unposted now' : `keyway: ${parts.join('; ')}`;
  return { text, blocks: [{ type: 'section', text: plain(text) }] };
}

/** An anomaly alert: what was unusual, and that the request went on. No buttons: nothing waits. */
export function alertMessage(alert: SlackAlertRecord): { text: string; blocks: SlackBlock[] } {
  const agent = alert.chain !== undefined ? alert.chain.join(' > ') : alert.agent;
  const head = `keyway noticed unusual use by ${agent}: ${alert.signals.map((s) => s.name).join(', ')}`;
  return {
    text: head,
    blocks: [
      { type: 'section', text: plain(head) },
      {
        type: 'section',
        fields: [plain(`Agent: ${agent}`), plain(`Grant: ${alert.grant}`), plain(`Method: ${alert.method}`), plain(`Host: ${alert.host}`)],
      },
      { type: 'section', text: plain(`Path class: ${alert.path_class}\n${alert.signals.map((s) => `Signal: ${s.name} (${s.why})`).join('\n')}`) },
      { type: 'context', elements: [plain(`anomaly mode alert: the request went on at ${alert.at}; nothing to answer`)] },
    ],
  };
}
