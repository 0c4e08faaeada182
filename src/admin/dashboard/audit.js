// The live audit view: the latest lines (GET /api/audit), then each new one as it is written (the
// event stream GET /api/audit/stream), filtered by agent, grant, decision and code. A polite live
// region says what arrived, at most every few seconds, so a screen reader is told without a flood.

import { api, csrfToken, withQuery } from './api.js';
import { h, localTimes, plural } from './dom.js';

const KEEP_ROWS = 200;
const ANNOUNCE_EVERY_MS = 3000;
const DECISIONS = ['inject', 'tunnel', 'deny', 'error', 'admin', 'self_check', 'approval'];

export async function renderAudit(main) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const text = (id) => h('input', { id, name: id.replace('audit-', ''), type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const decision = h(
    'select',
    { id: 'audit-decision', name: 'decision' },
    h('option', { value: '' }, 'any'),
    DECISIONS.map((d) => h('option', { value: d }, d)),
  );
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('audit-agent', 'Agent', text('audit-agent')),
    field('audit-grant', 'Grant', text('audit-grant')),
    field('audit-decision', 'Decision', decision),
    field('audit-code', 'Code', text('audit-code')),
    h('button', { type: 'submit' }, 'Apply'),
  );
  const state = h('p', { id: 'audit-state', class: 'muted' }, 'Connecting…');
  const announce = h('p', { id: 'audit-live', class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const body = h('tbody', { id: 'audit-rows' });
  const table = h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      // stacks: on a narrow screen each line is a block, each value beside its column's name (style.css).
      { class: 'audit stacks' },
      h('caption', { class: 'visually-hidden' }, 'Audit lines, newest first'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Time', 'Decision', 'Agent', 'Grant', 'Request', 'Status', 'Code'].map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      body,
    ),
  );
  main.append(form, state, announce, table);

  let stream;
  // Each Apply starts a new read; one still waiting for its page when another began drops its lines
  // and opens no stream (else an earlier, unfiltered page and feed would fill the filtered table).
  let generation = 0;
  let pending = 0;
  let latest = '';
  const timer = setInterval(() => {
    if (pending === 0) return;
    announce.textContent = `${plural(pending, 'new audit line', 'new audit lines')}; latest: ${latest}`;
    pending = 0;
  }, ANNOUNCE_EVERY_MS);

  const start = async () => {
    const run = ++generation;
    stream?.close();
    stream = undefined;
    // Until the new stream is open, lines written now may be in neither the page read nor the stream.
    state.textContent = 'Connecting…';
    const filters = {
      agent: form.querySelector('#audit-agent').value.trim(),
      grant: form.querySelector('#audit-grant').value.trim(),
      decision: decision.value,
      code: form.querySelector('#audit-code').value.trim(),
    };
    body.replaceChildren();
    try {
      const { lines } = await api('GET', withQuery('/api/audit', { ...filters, limit: 50 }));
      if (run !== generation) return;
      // Newest first on screen, whichever order the page came in.
      const sorted = [...lines].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || String(a.ts).localeCompare(String(b.ts)));
      for (const line of sorted) body.prepend(row(line));
    } catch (err) {
      if (run !== generation) return;
      state.textContent = `Could not read the audit log: ${err.message}`;
    }
    stream = new EventSource(withQuery('/api/audit/stream', { ...filters, csrf: csrfToken() }));
    stream.addEventListener('open', () => {
      state.textContent = 'Live: new lines appear at the top.';
    });
    stream.addEventListener('audit', (event) => {
      let line;
      try {
        line = JSON.parse(event.data);
      } catch {
        return;
      }
      body.prepend(row(line));
      while (body.childElementCount > KEEP_ROWS) body.lastElementChild.remove();
      pending++;
      latest = summary(line);
    });
    stream.addEventListener('error', () => {
      state.textContent = stream.readyState === EventSource.CLOSED ? 'The live feed stopped; choose Apply to reconnect.' : 'The live feed is reconnecting…';
    });
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void start();
  });
  await start();
  return () => {
    clearInterval(timer);
    stream?.close();
  };
}

/** The badge's colour: traffic green, an operator's change or an answer blue, a self check by how it went, else red. */
function badgeClass(line) {
  if (line.decision === 'inject' || line.decision === 'tunnel') return 'ok';
  if (line.decision === 'admin' || line.decision === 'approval') return 'info';
  // `keyway doctor`'s own check: neither traffic nor a refusal, whatever its code says.
  if (line.decision === 'self_check') return typeof line.status === 'number' && line.status < 400 ? 'ok' : 'warn';
  return 'bad';
}

/**
 * A change made at the command line: its host is the machine it was made on and its actor
 * `user@host`, so it reads "by root on host vm", never "vm by root@vm" (as if vm were the object).
 */
function cliChange(line) {
  const host = textOf(line.host);
  const actor = textOf(line.actor);
  const person = actor && host && actor.endsWith(`@${host}`) ? actor.slice(0, -host.length - 1) : actor;
  return [
    person ? h('span', { class: 'actor' }, h('span', { class: 'muted' }, 'by '), person) : '',
    host ? [h('span', { class: 'muted' }, person ? ' on host ' : 'on host '), h('span', { class: 'host' }, host)] : '',
  ];
}

function summary(line) {
  return [line.decision, line.method, `${line.host}${line.path ?? ''}`, line.status ?? line.code ?? ''].filter(Boolean).join(' ');
}

/** A stored text field, or null: lines written by older keyways, or other decisions, lack it. */
function textOf(value) {
  return typeof value === 'string' && value !== '' ? value : null;
}

function row(line) {
  const at = Date.parse(line.ts);
  const time = Number.isNaN(at) ? String(line.ts) : new Date(at).toLocaleTimeString();
  const purpose = textOf(line.purpose);
  const request = [
    line.method,
    ' ',
    h('span', { class: 'host' }, `${line.host}${line.port && line.port !== 443 ? `:${line.port}` : ''}`),
    h('span', { class: 'path' }, line.path ?? ''),
    // A path recorded cut (path_truncated, path_sha256), and a summary of refusals past the budget.
    line.path_truncated === true ? h('span', { class: 'cut', title: `sha256 of the whole path: ${line.path_sha256 ?? ''}` }, '…') : '',
    typeof line.repeated === 'number' ? h('span', { class: 'repeated' }, ` ×${line.repeated}`) : '',
    // Why the agent said it made the request (X-Keyway-Purpose), as it stated it.
    purpose ? h('span', { class: 'purpose' }, h('span', { class: 'muted' }, 'purpose: '), purpose) : '',
    // Who made an operator's change: a CLI user, the admin token, a dashboard session, a signal.
    textOf(line.actor) ? h('span', { class: 'actor' }, h('span', { class: 'muted' }, ' by '), line.actor) : '',
    // On an MCP endpoint: the JSON-RPC method, the tool called, and how many tools a listing lost.
    line.mcp && typeof line.mcp === 'object' && textOf(line.mcp.method)
      ? h(
          'span',
          { class: 'mcp' },
          h('span', { class: 'muted' }, ' mcp '),
          line.mcp.method,
          textOf(line.mcp.tool) ? ` ${line.mcp.tool}` : '',
          typeof line.mcp.hidden === 'number' ? ` (${plural(line.mcp.hidden, 'tool')} hidden)` : '',
        )
      : '',
    // A request a rule sent to a person: the approval, what became of it, and who answered.
    line.approval && typeof line.approval === 'object' && textOf(line.approval.id)
      ? h(
          'span',
          { class: 'approval' },
          h('span', { class: 'muted' }, ' approval '),
          line.approval.id,
          `: ${line.approval.outcome ?? ''}`,
          textOf(line.approval.by) ? ` by ${line.approval.by}` : '',
        )
      : '',
    // The hash of the policy that decided (policy: "sha256:…"), short; the whole in its title.
    typeof line.policy === 'string' && line.policy.startsWith('sha256:')
      ? h('span', { class: 'policy-hash', title: line.policy }, h('span', { class: 'muted' }, ' policy '), line.policy.slice(7, 19))
      : '',
  ];
  // As `keyway audit tail` prints them: a refusal's reason and what to do, as the agent was told.
  const message = textOf(line.message);
  const hint = textOf(line.hint);
  const redacted = typeof line.leak_redacted === 'number' && line.leak_redacted > 0 ? line.leak_redacted : 0;
  return h(
    'tr',
    { 'data-decision': line.decision, 'data-grant': line.grant ?? '', 'data-code': line.code ?? '', 'data-id': line.id ?? '' },
    // data-label: the column's name, shown beside each value when a narrow screen stacks the row.
    h('td', { 'data-label': 'Time' }, h('time', { datetime: line.ts, title: Number.isNaN(at) ? null : new Date(at).toLocaleString() }, time)),
    h('td', { 'data-label': 'Decision' }, h('span', { class: `badge ${badgeClass(line)}` }, line.decision)),
    h('td', { 'data-label': 'Agent' }, line.agent ?? '—'),
    h('td', { 'data-label': 'Grant' }, line.grant ?? '—'),
    h('td', { 'data-label': 'Request', class: 'request' }, line.action ? `${line.action} ` : '', line.client === 'cli' ? cliChange(line) : request),
    h(
      'td',
      { 'data-label': 'Status' },
      line.status ?? '—',
      redacted
        ? h(
            'span',
            { class: 'redacted', title: 'copies of the injected secret the leak guard removed from the answer' },
            ` · ${redacted} ${redacted === 1 ? 'copy' : 'copies'} of the secret redacted`,
          )
        : '',
    ),
    h(
      'td',
      { 'data-label': 'Code', class: 'outcome' },
      line.code ? h('code', {}, line.code) : '',
      message ? h('span', { class: 'message' }, localTimes(message)) : '',
      hint ? h('span', { class: 'hint' }, h('span', { class: 'muted' }, 'hint: '), localTimes(hint)) : '',
      textOf(line.changed) ? h('span', { class: 'hint' }, h('span', { class: 'muted' }, 'changed: '), line.changed) : '',
    ),
  );
}
