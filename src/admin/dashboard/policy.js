// The policy in effect: its hash (the one audit lines carry), the Cedar files and policy ids, what
// lint finds, and a button that replays the last 24 hours of the audit log under it (POST
// /api/policy/test with no candidate): the requests whose verdict would differ from the recorded one.

import { api } from './api.js';
import { act, h, plural } from './dom.js';

export async function renderPolicy(main) {
  const body = h('div', { id: 'policy' });
  main.append(body);
  const policy = await api('GET', '/api/policy');
  const result = h('div', { id: 'policy-test', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'policy-test-run' }, 'Test against the last 24 h');
  button.addEventListener('click', () =>
    act(button, async () => {
      result.replaceChildren(h('p', { class: 'muted' }, 'Replaying…'));
      result.replaceChildren(...testView(await api('POST', '/api/policy/test', { since: '24h' })));
    }),
  );
  body.replaceChildren(
    h(
      'section',
      { 'aria-labelledby': 'policy-hash' },
      h('h2', { id: 'policy-hash' }, 'Policy in effect'),
      h(
        'p',
        {},
        policy.hash === null
          ? h('span', { id: 'policy-hash-value', class: 'bad' }, 'The files on disk do not load (see Lint); keyway keeps the policy it loaded last.')
          : h('code', { id: 'policy-hash-value' }, policy.hash),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'policy-files' },
      h('h2', { id: 'policy-files' }, 'Cedar files'),
      policy.files.length === 0
        ? h('p', { class: 'muted' }, 'None: the YAML rules alone decide.')
        : h('ul', { id: 'policy-file-list' }, ...policy.files.map((f) => h('li', {}, h('code', {}, f)))),
      h(
        'details',
        {},
        h('summary', {}, plural(policy.policies.length, 'policy', 'policies')),
        h('ul', {}, ...policy.policies.map((p) => h('li', { 'data-policy': p.id }, h('code', {}, p.id), ' ', h('span', { class: 'muted' }, p.origin)))),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'policy-lint' },
      h('h2', { id: 'policy-lint' }, 'Lint'),
      policy.lint.length === 0
        ? h('p', { id: 'policy-lint-clean' }, 'No problem found.')
        : h(
            'ul',
            { id: 'policy-lint-findings' },
            ...policy.lint.map((f) =>
              h('li', { class: f.severity === 'error' ? 'bad' : 'warn' }, h('code', {}, f.at), ` ${f.severity}: `, f.policy ? `${f.policy}: ` : '', f.message),
            ),
          ),
    ),
    h('section', { 'aria-labelledby': 'policy-replay' }, h('h2', { id: 'policy-replay' }, 'Replay'), button, result),
  );
}

function testView(report) {
  const line = (r) => `seq ${r.seq} ${r.agent} ${r.grant ?? '-'} ${r.method} ${r.host}${r.path}`;
  return [
    h('p', { id: 'policy-test-summary' }, `${plural(report.compared, 'recorded request')} judged again; verdicts that differ: ${report.differing.length}.`),
    report.differing.length === 0
      ? ''
      : h(
          'ul',
          { id: 'policy-test-differing' },
          ...report.differing.map((d) =>
            h(
              'li',
              { 'data-seq': String(d.seq) },
              line(d),
              `: recorded ${d.recorded}, now ${d.verdict}`,
              d.deciding.length ? ` by ${d.deciding.join(', ')}` : '',
            ),
          ),
        ),
    report.not_replayable.length === 0
      ? ''
      : h(
          'details',
          {},
          h('summary', {}, `${plural(report.not_replayable.length, 'request')} not replayable`),
          h('ul', {}, ...report.not_replayable.map((n) => h('li', {}, `${line(n)}: ${n.why}`))),
        ),
  ];
}
