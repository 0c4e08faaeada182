import { answerInStore, answerLine } from '../../approvals/answer.ts';
import { approvalLine } from '../../approvals/lines.ts';
import { APPROVAL_PREFIX, type ApprovalRecord, effectiveState } from '../../approvals/record.ts';
import { parseDuration } from '../../config/duration.ts';
import { KeywayError } from '../../errors/index.ts';
import type { Services } from '../../open-home.ts';
import { parse, type Args } from '../args.ts';
import { appendAuditLine, cliActor } from '../audit-change.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError, type CommandIO } from '../io.ts';

const USAGE = `keyway approvals list [--all] [--json]
keyway approvals show ID [--json]
keyway approvals approve ID [--for DURATION] [--pattern] [--json]
keyway approvals deny ID [--reason TEXT] [--json]

A rule with \`approve: human\` sends each request it allows to a person first. The request waits
(the rule's approval.wait, 2m by default) or, with wait: 0, is refused at once with 403
approval_required naming the approval, to be sent again once approved.
\`list\` shows those waiting (--all: also those answered or ended, kept a day).
\`approve\` lets it through: once (this request only), or for a window when the rule has one
(approval.window) or --for gives one, up to 24h: the agent's later requests with the same method
and exact path pass without asking until then; --pattern widens the window to the rule's paths.
\`deny\` refuses it (403 approval_denied, with --reason shown to the agent).
Every answer is written to the audit log (decision approval) with who gave it (KEYWAY_ACTOR, else
user@host). A running keyway anywhere on this store lets the held request go within a second.`;

/** Each subcommand and the words after it (args.ts refuses any other, and any word more). */
const WORDS = { list: 0, show: 1, approve: 1, deny: 1 } as const;

export const approvals: Command = {
  name: 'approvals',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, { all: { type: 'boolean' }, for: { type: 'string' }, pattern: { type: 'boolean' }, reason: { type: 'string' } }, WORDS);
    const [action, id] = args.positionals;
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) return list(services, args, io);
    if (!id) throw usageError(`approvals ${action}: expected an approval id (keyway approvals list shows them)`);
    if (action === 'show') return show(services, args, io, id);
    return answer(services, args, io, id, action === 'approve');
  },
};

function current(services: Services): ApprovalRecord[] {
  const now = new Date();
  return services.store
    .entries<ApprovalRecord>(APPROVAL_PREFIX)
    .map(([, r]) => ({ ...r, state: effectiveState(r, now) }))
    .sort((a, b) => b.asked_at.localeCompare(a.asked_at));
}

function list(services: Services, args: Args, io: CommandIO): number {
  const rows = current(services).filter((r) => args.flag('all') || r.state === 'pending');
  if (args.json) {
    printJson(io, { approvals: rows });
    return 0;
  }
  printTable(
    io,
    rows.map((r) => ({
      id: r.id,
      state: r.state,
      agent: agentNamed(r),
      grant: r.grant,
      request: `${r.method} ${where(r)}`,
      purpose: r.purpose,
      expires: r.state === 'pending' ? r.expires_at : (r.decision?.until ?? r.decision?.at ?? r.ended_at),
      by: r.decision?.by,
    })),
    ['id', 'state', 'agent', 'grant', 'request', 'purpose', 'expires', 'by'],
  );
  return 0;
}

function show(services: Services, args: Args, io: CommandIO, id: string): number {
  const record = current(services).find((r) => r.id === id);
  if (!record) throw new KeywayError('not_found', `no approval ${id} (keyway approvals list --all shows every approval kept)`);
  if (args.json) {
    printJson(io, record);
    return 0;
  }
  const lines = [
    `${record.id}  ${record.state}`,
    `agent ${record.agent}${record.chain ? ` (delegated: ${record.chain.join(' > ')})` : ''} on grant ${record.grant}`,
    `${record.method} ${where(record)}`,
    `rule ${record.rule}`,
    ...(record.purpose ? [`purpose: ${record.purpose}`] : []),
    ...(record.body
      ? [`body: ${record.body.bytes} bytes${record.body.type ? ` of ${record.body.type}` : ''}${record.body.preview ? `\n${record.body.preview}` : ''}`]
      : []),
    `asked ${record.asked_at}; ${record.holder ? `held until ${record.expires_at}` : `open until ${record.expires_at} (the agent retries)`}`,
    ...(record.decision
      ? [`${record.decision.outcome} by ${record.decision.by} at ${record.decision.at}${record.decision.until ? ` until ${record.decision.until}` : ''}`]
      : []),
    ...(record.ended_because ? [record.ended_because] : []),
  ];
  io.out(lines.join('\n'));
  return 0;
}

async function answer(services: Services, args: Args, io: CommandIO, id: string, approve: boolean): Promise<number> {
  const forText = args.string('for');
  const forMs = forText === undefined ? undefined : parseDuration(forText);
  if (forText !== undefined && forMs === undefined) throw usageError(`--for: expected a duration such as 15m or 1h, got "${forText}"`);
  if (!approve && (forText !== undefined || args.flag('pattern'))) throw usageError('--for and --pattern go with approve');
  if (approve && args.string('reason') !== undefined) throw usageError('--reason goes with deny');
  const result = await answerInStore(services.store, id, {
    approve,
    forMs,
    pattern: args.flag('pattern'),
    reason: args.string('reason'),
    by: cliActor(io.env),
    now: new Date(),
  });
  if (!result.ok) throw new KeywayError(result.code, result.message);
  await appendAuditLine(services, io.env, approvalLine(result.record, answerLine(result.record)));
  const d = result.record.decision!;
  if (args.json) printJson(io, result.record);
  else if (d.outcome === 'deny') io.out(`denied ${id}`);
  else io.out(d.outcome === 'window' ? `approved ${id} until ${d.until}${d.pattern ? " for the rule's paths" : ''}` : `approved ${id} (once)`);
  return 0;
}

/** The agent, or a delegated agent's chain root first (`lead > worker`): whom a yes lets through on whose behalf. */
function agentNamed(r: ApprovalRecord): string {
  return r.chain ? r.chain.join(' > ') : r.agent;
}

/** host[:port]/path, the port left out when it is 443. */
function where(r: ApprovalRecord): string {
  return `${r.host}${r.port && r.port !== 443 ? `:${r.port}` : ''}${r.path}`;
}
