// `keyway spend`: what model traffic used and cost, per agent and model, and where each budget
// stands. Reads the store's spend records (operations/spend.ts, shared with GET /api/spend), so it
// works whether or not a keyway runs; nothing it prints is secret.

import { budgetsOf } from '../../operations/spend-budgets.ts';
import { type BudgetRow, SPEND_COUNT_FIELDS, type SpendReport, type SpendRow, spendReport } from '../../operations/spend.ts';
import { spendSince } from '../../operations/spend-window.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { type CommandIO, printJson, printTable } from '../io.ts';

const USAGE = `keyway spend [--agent ID] [--grant ID] [--since T] [--json]

What model answers through keyway used and cost (the tokens each model reported, priced at the
config's pricing:), per agent and model, with totals; then each budget of the config (budgets:) and
where it stands now: used / limit, unit, period, when it resets (a "*" budget: one row per agent,
grant or end user counted this period). Read from the store: works with no keyway running (a
running keyway adds its counts within a second).

  --agent ID   only this agent's traffic (and the budgets that can count it)
  --grant ID   only this grant's traffic (and the budgets that can count it)
  --since T    from T: an ISO date (2026-11-01), a date-time (2026-11-26T09:30Z; UTC without a
               zone), or a duration back from now (90m, 24h, 7d). Usage is kept per UTC hour for
               today and the two full UTC days before, so the window starts at the top of the hour
               T falls in; older usage is kept per UTC day, so a T inside an older day counts that
               whole day (the window starts at its midnight). Default: the start of the current
               UTC month. Usage is kept 62 days; older usage is in the audit log.
  --json       {since, until, totals, rows, budgets}: the shape of GET /api/spend (docs/spend.md)

A model with no price is counted in tokens and flagged "no price: add it under pricing:" (never
priced at zero); answers that said nothing of their usage are counted as unknown.`;

export const spend: Command = {
  name: 'spend',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, { agent: { type: 'string' }, grant: { type: 'string' }, since: { type: 'string' } });
    const now = new Date();
    const since = spendSince(args.string('since'), now, '--since');
    const services = await servicesFor(args, io);
    try {
      const report = spendReport(services.store, budgetsOf(services.config, services.store), {
        since,
        now,
        agent: args.string('agent'),
        grant: args.string('grant'),
      });
      if (args.json) printJson(io, report);
      else print(io, report);
      return 0;
    } finally {
      services.store.close();
      await services.store.end?.();
    }
  },
};

const usd = (n: number): string => n.toFixed(6);

/** Rows merged per agent and model (the table's grain; --json keeps grant and end user apart). */
function byAgentAndModel(rows: readonly SpendRow[]): SpendRow[] {
  const merged = new Map<string, SpendRow>();
  for (const row of rows) {
    const key = JSON.stringify([row.agent, row.model]);
    const seen = merged.get(key);
    if (seen === undefined) {
      merged.set(key, { ...row });
      continue;
    }
    for (const field of SPEND_COUNT_FIELDS) seen[field] += row[field];
    // Already rounded to the nano-dollar; a few additions stay far inside the 1e-6 printed.
    seen.cost_usd += row.cost_usd;
  }
  return [...merged.values()];
}

function print(io: CommandIO, report: SpendReport): void {
  io.out(`Model spend since ${report.since} (UTC hours) until ${report.until}`);
  const rows = byAgentAndModel(report.rows).map((r) => ({
    agent: r.agent,
    model: r.model,
    requests: r.requests,
    input: r.input_tokens,
    cached: r.cached_input_tokens,
    output: r.output_tokens,
    cost_usd: usd(r.cost_usd),
    note: noteOf(r),
  }));
  const t = report.totals;
  if (rows.length > 0)
    rows.push({
      agent: 'TOTAL',
      model: '',
      requests: t.requests,
      input: t.input_tokens,
      cached: t.cached_input_tokens,
      output: t.output_tokens,
      cost_usd: usd(t.cost_usd),
      note: noteOf(t),
    });
  printTable(io, rows, ['agent', 'model', 'requests', 'input', 'cached', 'output', 'cost_usd', 'note']);
  const unpricedFree = t.unpriced - t.fallback;
  if (unpricedFree > 0)
    io.out(`${unpricedFree} answer(s) had no price: their tokens are counted, their cost is not in cost_usd. Add the model under pricing: in the config.`);
  if (t.fallback > 0)
    io.out(
      `${t.fallback} answer(s) had no price and a budget in dollars applied: priced at the fallback price (the vendor's highest shipped price, or your "*" entry), in cost_usd and the budget. Add the model under pricing: in the config.`,
    );
  const unknownFree = t.unknown - t.estimated;
  if (unknownFree > 0) io.out(`${unknownFree} answer(s) said nothing of their usage: counted as requests, with no tokens.`);
  if (t.estimated > 0)
    io.out(
      `${t.estimated} answer(s) said nothing of their usage and a budget applied: estimated from their bytes (4 bytes a token), in the counts and the budget.`,
    );
  io.out('');
  io.out('Budgets');
  if (report.budgets.length === 0) io.out('(none: budgets: in the config sets them, docs/spend.md)');
  else printTable(io, report.budgets.map(budgetLine), ['budget', 'for', 'used', 'limit', 'unit', 'per', 'resets_at', 'over', 'note']);
}

function noteOf(c: { unpriced: number; unknown: number; partial: number; fallback: number; estimated: number }): string {
  const notes: string[] = [];
  if (c.unpriced > 0) notes.push(`no price: add it under pricing: (${c.unpriced} answer(s)${c.fallback > 0 ? `, ${c.fallback} at the fallback price` : ''})`);
  if (c.unknown > 0) notes.push(`${c.unknown} with no usage reported${c.estimated > 0 ? ` (${c.estimated} estimated from bytes)` : ''}`);
  if (c.partial > 0) notes.push(`${c.partial} cut short`);
  return notes.join('; ');
}

function budgetLine(b: BudgetRow): Record<string, unknown> {
  const scope = (['agent', 'grant', 'end_user'] as const).filter((k) => b[k] !== undefined).map((k) => `${k}=${b[k]}`);
  const share = b.limit > 0 ? ` (${Math.floor((b.used / b.limit) * 100)}%)` : '';
  return {
    budget: b.name,
    for: scope.length > 0 ? scope.join(',') : 'all model traffic',
    used: `${b.unit === 'usd' ? usd(b.used) : b.used}${share}`,
    limit: b.limit,
    unit: b.unit,
    per: b.per,
    resets_at: b.resets_at,
    over: b.over,
    note: budgetNote(b),
  };
}

/** What `used` holds that no vendor reported as priced: answers at the fallback price, answers estimated from their bytes. */
function budgetNote(b: BudgetRow): string {
  const notes: string[] = [];
  if (b.fallback > 0) notes.push(`${b.fallback} at the fallback price`);
  if (b.estimated > 0) notes.push(`${b.estimated} estimated from bytes`);
  return notes.join('; ');
}
