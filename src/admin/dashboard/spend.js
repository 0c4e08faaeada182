// Model spend: per agent and model, today and this month (UTC days, as keyway keeps usage),
// tokens and dollars, a model with no price flagged (counted in tokens, never priced at zero), and
// each budget with how close it is (a <meter>, and the share in words). From GET /api/spend, the
// same answer `keyway spend --json` prints.

import { api, withQuery } from './api.js';
import { h, plural, when } from './dom.js';

const REFRESH_MS = 30_000;
const NUMBER = new Intl.NumberFormat('en-US');

const tokens = (n) => NUMBER.format(n ?? 0);
const usd = (n) => `$${(n ?? 0).toFixed(6)}`;

export async function renderSpend(main) {
  const body = h('div', { id: 'spend' });
  main.append(body);
  const load = async () => {
    const now = new Date();
    const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
    const [day, month] = await Promise.all([api('GET', withQuery('/api/spend', { since: today })), api('GET', '/api/spend')]);
    body.replaceChildren(...view(day, month));
  };
  await load();
  const timer = setInterval(() => void load().catch(() => undefined), REFRESH_MS);
  return () => clearInterval(timer);
}

/** One row per agent and model (the API's rows also split grant and end user). */
function byAgentAndModel(rows) {
  const merged = new Map();
  for (const r of rows ?? []) {
    const key = JSON.stringify([r.agent, r.model]);
    const seen = merged.get(key) ?? {
      agent: r.agent,
      model: r.model,
      requests: 0,
      input_tokens: 0,
      output_tokens: 0,
      cached_input_tokens: 0,
      cost_usd: 0,
      unpriced: 0,
      unknown: 0,
      fallback: 0,
      estimated: 0,
    };
    for (const k of ['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cost_usd', 'unpriced', 'unknown', 'fallback', 'estimated'])
      seen[k] += r[k] ?? 0;
    merged.set(key, seen);
  }
  return merged;
}

function view(day, month) {
  const tile = (label, value, kind, id) => h('div', { class: `tile ${kind}`, id }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
  const totals = (t, when, id) =>
    h(
      'div',
      { class: 'tiles', id },
      tile(`cost ${when}`, usd(t.cost_usd), 'info', `${id}-cost`),
      tile(`tokens ${when}`, tokens((t.input_tokens ?? 0) + (t.output_tokens ?? 0)), 'info', `${id}-tokens`),
      tile(`model answers ${when}`, tokens(t.requests), 'ok', `${id}-requests`),
      t.unpriced > 0 ? tile('answers with no price', tokens(t.unpriced), 'bad', `${id}-unpriced`) : null,
      t.unknown > 0 ? tile('answers with no usage', tokens(t.unknown), 'bad', `${id}-unknown`) : null,
      t.fallback > 0 ? tile('answers at the fallback price', tokens(t.fallback), 'warn', `${id}-fallback`) : null,
      t.estimated > 0 ? tile('answers estimated from bytes', tokens(t.estimated), 'warn', `${id}-estimated`) : null,
    );
  return [
    h('section', { 'aria-labelledby': 'spend-today' }, h('h2', { id: 'spend-today' }, 'Today (UTC)'), totals(day.totals, 'today', 'today')),
    h(
      'section',
      { 'aria-labelledby': 'spend-month' },
      h('h2', { id: 'spend-month' }, 'This month (UTC)'),
      totals(month.totals, 'this month', 'month'),
      h(
        'p',
        { class: 'muted' },
        'Since ',
        h('time', { datetime: month.since }, `${String(month.since).slice(0, 10)} 00:00 UTC`),
        '; what a running keyway counted in the last second may not be in yet.',
      ),
    ),
    h('section', { 'aria-labelledby': 'spend-models' }, h('h2', { id: 'spend-models' }, 'By agent and model'), modelTable(day, month)),
    h('section', { 'aria-labelledby': 'spend-budgets' }, h('h2', { id: 'spend-budgets' }, 'Budgets'), budgetTable(month.budgets ?? [])),
  ];
}

function modelTable(day, month) {
  const today = byAgentAndModel(day.rows);
  const rows = [...byAgentAndModel(month.rows)];
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No model answers this month.');
  const head = ['Agent', 'Model', 'Tokens today', 'Cost today', 'Answers', 'Input', 'Cached', 'Output', 'Cost this month', 'Notes'];
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      // stacks: on a narrow screen each row is a block, so its Notes (a "no price" flag) stay on screen.
      { id: 'spend-rows', class: 'stacks' },
      h('caption', { class: 'visually-hidden' }, 'Tokens and cost per agent and model, today and this month'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          head.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map(([key, m]) => {
          const d = today.get(key);
          const notes = [];
          if (m.unpriced > 0)
            notes.push(h('span', { class: 'badge bad' }, 'no price'), ` ${plural(m.unpriced, 'answer')}: add it under `, h('code', {}, 'pricing:'));
          if (m.fallback > 0)
            notes.push(h('span', { class: 'badge warn' }, 'fallback price'), ` ${plural(m.fallback, 'answer')} priced at the vendor's highest`);
          if (m.unknown > 0) notes.push(h('span', { class: 'badge warn' }, 'no usage'), ` ${plural(m.unknown, 'answer')} said nothing of their usage`);
          if (m.estimated > 0) notes.push(h('span', { class: 'badge warn' }, 'estimated'), ` ${plural(m.estimated, 'answer')} counted from their bytes`);
          // data-label: the column's name, beside each value when a narrow screen stacks the row.
          const cell = (label, kind, ...content) => h('td', { 'data-label': label, class: kind }, ...content);
          return h(
            'tr',
            { 'data-agent': m.agent ?? '', 'data-model': m.model ?? '' },
            cell('Agent', null, m.agent ?? h('span', { class: 'muted' }, 'anonymous')),
            cell('Model', null, m.model ?? h('span', { class: 'muted' }, 'not named')),
            cell('Tokens today', 'num', tokens((d?.input_tokens ?? 0) + (d?.output_tokens ?? 0))),
            cell('Cost today', 'num', usd(d?.cost_usd ?? 0)),
            cell('Answers', 'num', tokens(m.requests)),
            cell('Input', 'num', tokens(m.input_tokens)),
            cell('Cached', 'num', tokens(m.cached_input_tokens)),
            cell('Output', 'num', tokens(m.output_tokens)),
            cell('Cost this month', 'num', usd(m.cost_usd)),
            cell('Notes', 'notes', notes),
          );
        }),
      ),
    ),
  );
}

function budgetTable(budgets) {
  if (budgets.length === 0) return h('p', { class: 'muted' }, 'No budgets: budgets: in the config sets them.');
  return h(
    'ul',
    { class: 'plain cards', id: 'budget-list' },
    budgets.map((b) => {
      const scope = ['agent', 'grant', 'end_user'].filter((k) => b[k] !== undefined).map((k) => `${k.replace('_', ' ')} ${b[k]}`);
      const share = b.limit > 0 ? Math.floor((b.used / b.limit) * 100) : 0;
      const amount = (n) => (b.unit === 'usd' ? usd(n) : `${tokens(n)} tokens`);
      const state =
        share >= 100 ? ['bad', 'at its limit'] : b.warn_at !== undefined && b.used >= b.warn_at * b.limit ? ['warn', 'past its warning'] : ['ok', 'under'];
      const id = `budget-${b.name.replace(/[^a-z0-9]/gi, '-')}-${b.scope.replace(/[^a-z0-9]/gi, '-')}`;
      return h(
        'li',
        { class: `card budget status-${state[0]}`, 'data-budget': b.name, 'data-scope': b.scope },
        h(
          'header',
          {},
          h('h3', { id }, `${b.name}: ${scope.length ? scope.join(', ') : 'all model traffic'}`),
          h('span', { class: `badge ${state[0]}` }, state[1]),
        ),
        h('meter', {
          min: 0,
          max: b.limit,
          value: Math.min(b.used, b.limit),
          low: (b.warn_at ?? 0.8) * b.limit,
          high: b.limit * 0.999,
          optimum: 0,
          'aria-labelledby': id,
        }),
        h('p', { class: 'budget-used' }, `${amount(b.used)} of ${amount(b.limit)} per ${b.per} (${share}%)`),
        b.fallback > 0 || b.estimated > 0
          ? h(
              'p',
              { class: 'budget-flags' },
              b.fallback > 0 ? [h('span', { class: 'badge warn' }, 'fallback price'), ` ${plural(b.fallback, 'answer')} priced at the fallback `] : null,
              b.estimated > 0 ? [h('span', { class: 'badge warn' }, 'estimated'), ` ${plural(b.estimated, 'answer')} with no usage, counted from bytes`] : null,
            )
          : null,
        h('p', { class: 'muted' }, 'Resets ', when(b.resets_at), `; over it: ${b.over === 'approve' ? 'held for a person' : 'refused (429 budget_exceeded)'}.`),
      );
    }),
  );
}
