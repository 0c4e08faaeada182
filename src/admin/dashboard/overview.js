// The overview: the last hour of proxied requests per minute by decision (a stacked bar chart, with
// the same numbers in words for screen readers), token refreshes, refusal codes, grants by the status
// the Grants page shows (grant-status.js), and the agents' leases that end soon.

import { api } from './api.js';
import { h, plural, svg, when } from './dom.js';
import { STATUS_ORDER, statusClass, statusLabel } from './grant-status.js';

const DECISIONS = ['inject', 'tunnel', 'deny', 'error'];
const REFRESH_MS = 10_000;

export async function renderOverview(main) {
  const body = h('div', { id: 'overview' });
  main.append(body);
  const load = async () => body.replaceChildren(...view(await api('GET', '/api/overview')));
  await load();
  const timer = setInterval(() => void load().catch(() => undefined), REFRESH_MS);
  return () => clearInterval(timer);
}

function view(o) {
  const total = (name) => o.totals?.[name] ?? 0;
  const tile = (label, value, kind) => h('div', { class: `tile ${kind}` }, h('span', { class: 'value' }, String(value)), h('span', { class: 'label' }, label));
  const rank = (label) => (STATUS_ORDER.includes(label) ? STATUS_ORDER.indexOf(label) : STATUS_ORDER.length);
  const grants = Object.entries(o.grants ?? {})
    .map(([status, n]) => [statusLabel(status), n])
    .sort(([a], [b]) => rank(a) - rank(b));
  const ending = o.leases_ending ?? [];
  // The counts are this keyway's since it started: within its first hour, the heading says so
  // (the Audit page lists older lines of that hour, written before a restart).
  const started = Date.parse(o.started_at ?? '');
  const young = Number.isFinite(started) && Date.now() - started < 3_600_000;
  const heading = young ? `Since keyway started at ${new Date(started).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : 'Last hour';
  return [
    h(
      'section',
      { 'aria-labelledby': 'last-hour' },
      h('h2', { id: 'last-hour' }, heading),
      h(
        'div',
        { class: 'tiles' },
        tile('injected', total('inject'), 'ok'),
        tile('tunnelled', total('tunnel'), 'info'),
        tile('refused', total('deny'), 'bad'),
        tile('errors', total('error'), 'bad'),
        tile('token refreshes', total('refreshed'), 'info'),
      ),
      chart(o.minutes ?? []),
    ),
    h(
      'div',
      { class: 'two' },
      h(
        'section',
        { 'aria-labelledby': 'codes' },
        h('h2', { id: 'codes' }, 'Refusals and errors'),
        o.codes?.length
          ? h(
              'ul',
              { class: 'plain counts' },
              o.codes.map((c) => h('li', {}, h('code', {}, c.code), ` ${c.count}`)),
            )
          : h('p', { class: 'muted' }, young ? 'None since keyway started.' : 'None in the last hour.'),
      ),
      h(
        'section',
        { 'aria-labelledby': 'grant-states' },
        h('h2', { id: 'grant-states' }, 'Grants'),
        grants.length
          ? h(
              'ul',
              { class: 'plain counts', id: 'grant-counts' },
              grants.map(([status, n]) => h('li', { 'data-status': status }, h('span', { class: `badge ${statusClass(status)}` }, status), ` ${n}`)),
            )
          : h('p', { class: 'muted' }, 'No grants.'),
        ending.length
          ? [
              h('h3', { id: 'leases-ending' }, 'Leases ending soon'),
              h(
                'ul',
                { class: 'plain counts', 'aria-labelledby': 'leases-ending' },
                ending.map((l) => h('li', { 'data-agent': l.agent, 'data-grant': l.grant }, `${l.agent} on ${l.grant}: ends `, when(l.expires_at))),
              ),
            ]
          : null,
        h('p', { class: 'muted' }, `${plural(o.agents ?? 0, 'agent')} · audit log ${o.audit ?? 'unknown'}`),
      ),
    ),
  ];
}

/** Stacked bars, one per minute; SVG attributes only (the CSP forbids inline styles). */
function chart(minutes) {
  const width = 600;
  const height = 120;
  const most = Math.max(1, ...minutes.map((m) => DECISIONS.reduce((n, d) => n + (m[d] ?? 0), 0)));
  const barWidth = width / Math.max(1, minutes.length);
  const bars = minutes.map((m, i) => {
    let y = height;
    const parts = DECISIONS.filter((d) => (m[d] ?? 0) > 0).map((d) => {
      const tall = ((m[d] ?? 0) / most) * (height - 4);
      y -= tall;
      return svg('rect', {
        x: (i * barWidth + 1).toFixed(1),
        y: y.toFixed(1),
        width: Math.max(1, barWidth - 2).toFixed(1),
        height: tall.toFixed(1),
        class: `bar-${d}`,
      });
    });
    const at = new Date(m.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return svg('g', {}, svg('title', {}, `${at}: ${DECISIONS.map((d) => `${m[d] ?? 0} ${d}`).join(', ')}`), parts);
  });
  const busy = minutes.filter((m) => DECISIONS.some((d) => (m[d] ?? 0) > 0)).length;
  const figure = h(
    'figure',
    { class: 'chart' },
    svg(
      'svg',
      { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'chart-caption', preserveAspectRatio: 'none' },
      svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }),
      bars,
    ),
    h(
      'figcaption',
      { id: 'chart-caption' },
      `Requests per minute over the last ${plural(minutes.length, 'minute')}, ${busy} with traffic; the busiest had ${most === 1 && busy === 0 ? 0 : most}. `,
      h(
        'span',
        { class: 'legend' },
        DECISIONS.map((d) => h('span', { class: `key key-${d}` }, d)),
      ),
    ),
  );
  return figure;
}
