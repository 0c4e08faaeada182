// The wallet's writes that take typed input: add a static grant (POST /api/grants) and set or
// replace a grant's secret (PUT /api/grants/{grant}/secret). A secret is typed into a password
// field, read once into the request and the field emptied at once, whatever the answer: it is never
// put back on the page, and no answer carries it. The checks are the API's (the CLI's own, with its
// messages); the page only says what they answered, overlap warnings included.

import { api } from './api.js';
import { h, notify } from './dom.js';

/** Grant types a person adds by hand with a static secret; OAuth grants come from Connect. */
const STATIC_TYPES = [
  { type: 'bearer', help: 'A token sent as Authorization: Bearer (a PAT, a JWT).' },
  { type: 'api_key', help: 'A key placed in a header or a query parameter: choose which below.' },
  { type: 'basic', help: 'A user and password sent as Authorization: Basic; the secret is user:password.' },
  { type: 'jwt', help: 'A JWT sent as Authorization: Bearer; keyway reads its exp and never sends it expired.' },
];

/** Each type's secret help, from the types themselves (GET /api/grant-types), asked once per page: types do not change while keyway runs. */
let secretHelps;
export function loadSecretHelp() {
  secretHelps ??= api('GET', '/api/grant-types').then(
    ({ types }) => new Map(types.map((t) => [t.type, t.secret.help])),
    (err) => {
      secretHelps = undefined; // asked again on the next load, not failed for the page's life
      throw err;
    },
  );
  return secretHelps;
}

/** A password input that the browser must not offer to save or fill (it is not a login). */
function secretInput(id, describedBy, required) {
  return h('input', {
    id,
    name: id,
    class: 'secret-input',
    type: 'password',
    autocomplete: 'new-password',
    spellcheck: 'false',
    'aria-describedby': describedBy,
    required,
  });
}

/** Reads the secret and empties the field in one step, so no later failure leaves it on the page. */
function takeSecret(input) {
  const value = input.value;
  input.value = '';
  return value;
}

/** Runs a form's write: the button disabled meanwhile, a refusal (message and hint) in the form's alert. */
async function submitting(button, alert, work) {
  button.disabled = true;
  alert.textContent = '';
  try {
    await work();
  } catch (err) {
    const text = err?.hint ? `${err.message} (${err.hint})` : (err?.message ?? String(err));
    alert.textContent = text;
    notify(text, 'error');
  } finally {
    button.disabled = false;
  }
}

/** The API's overlap warnings, kept on screen until the next add (they say what a request will do). */
function showWarnings(region, warnings) {
  region.replaceChildren(...(warnings ?? []).map((line) => h('li', {}, line.replace(/^warning: /, ''))));
  region.hidden = region.childElementCount === 0;
}

export function addGrantForm(onAdded) {
  const field = (id, label, input, help) =>
    h('div', {}, h('label', { for: id }, label), input, help ? h('p', { id: `${id}-help`, class: 'help muted' }, help) : null);
  const text = (id, attrs = {}) => h('input', { id, name: id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
  const typeHelp = h('p', { id: 'add-type-help', class: 'help muted' });
  const type = h(
    'select',
    { id: 'add-type', name: 'add-type', 'aria-describedby': 'add-type-help' },
    STATIC_TYPES.map((t) => h('option', { value: t.type }, t.type)),
  );
  const place = h(
    'select',
    { id: 'add-place', name: 'add-place', 'aria-describedby': 'add-place-help' },
    h('option', { value: 'default' }, 'the type’s default'),
    h('option', { value: 'header' }, 'a header'),
    h('option', { value: 'query' }, 'a query parameter'),
  );
  const header = field('add-header', 'Header', text('add-header', { placeholder: 'x-api-key' }));
  const format = field(
    'add-format',
    'Format',
    text('add-format', { placeholder: '{secret}', 'aria-describedby': 'add-format-help' }),
    'Optional; must contain {secret}.',
  );
  const query = field('add-query', 'Query parameter', text('add-query', { placeholder: 'key' }));
  const secret = secretInput('add-secret', 'add-secret-help', false);
  const submit = h('button', { type: 'submit' }, 'Add grant');
  const alert = h('p', { class: 'error', role: 'alert' });
  const warnings = h('ul', { id: 'grant-warnings', class: 'warnings', role: 'status', 'aria-label': 'Warnings from the last grant added' });
  warnings.hidden = true;
  const shown = () => {
    typeHelp.textContent = STATIC_TYPES.find((t) => t.type === type.value)?.help ?? '';
    header.hidden = place.value !== 'header';
    format.hidden = place.value !== 'header';
    query.hidden = place.value !== 'query';
  };
  type.addEventListener('change', shown);
  place.addEventListener('change', shown);
  const form = h(
    'form',
    { class: 'connect', 'aria-labelledby': 'add-grant-title' },
    h('h2', { id: 'add-grant-title', class: 'form-title' }, 'Add a grant with a static secret'),
    h(
      'div',
      { class: 'fields' },
      field('add-id', 'Id of the new grant', text('add-id', { required: true, 'aria-describedby': 'add-id-help' }), 'a-z, 0-9 and -, such as openai.'),
      h('div', {}, h('label', { for: 'add-type' }, 'Type'), type, typeHelp),
      field(
        'add-domains',
        'Domains',
        text('add-domains', { required: true, 'aria-describedby': 'add-domains-help' }),
        'Separated by commas or spaces: api.example.com, *.example.com.',
      ),
      field('add-place', 'Inject into', place, 'Where the secret goes on each request.'),
      header,
      format,
      query,
      field('add-secret', 'Secret', secret, 'Optional: set it now or later. Sent once; never shown again.'),
    ),
    submit,
    alert,
    warnings,
  );
  shown();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const typed = takeSecret(secret);
    void submitting(submit, alert, async () => {
      const body = {
        id: value('add-id'),
        type: type.value,
        domains: value('add-domains')
          .split(/[\s,]+/)
          .filter(Boolean),
      };
      if (place.value === 'header') body.inject = { header: value('add-header'), ...(value('add-format') ? { format: value('add-format') } : {}) };
      if (place.value === 'query') body.inject = { query: value('add-query') };
      if (typed !== '') body.secret = typed;
      const answer = await api('POST', '/api/grants', body);
      showWarnings(warnings, answer.warnings);
      form.querySelector('#add-id').value = '';
      form.querySelector('#add-domains').value = '';
      notify(`Added grant ${answer.grant.id}${typed === '' ? '; it has no secret yet' : ''}.`);
      await onAdded();
    });
  });
  return form;
}

/**
 * Set or replace the secret of a grant kept in the store (a config grant's secret comes from the
 * config); `help`: what its type's secret is (loadSecretHelp()).
 */
export function secretForm(grant, reload, help) {
  const id = `secret-${grant.id}`;
  const replacing = grant.secret === 'set';
  const verb = replacing ? 'Replace secret' : 'Set secret';
  const input = secretInput(id, `${id}-help`, true);
  const submit = h('button', { type: 'submit', 'aria-label': `${verb} of ${grant.id}` }, verb);
  const alert = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { class: 'secret-form' },
    h('label', { for: id }, `New secret for ${grant.id}`),
    input,
    h('p', { id: `${id}-help`, class: 'help muted' }, `${help ?? ''} Sent once; never shown again.`),
    submit,
    alert,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const typed = takeSecret(input);
    void submitting(submit, alert, async () => {
      if (typed.trim() === '') throw new Error('type the secret first');
      await api('PUT', `/api/grants/${encodeURIComponent(grant.id)}/secret`, { secret: typed });
      notify(`Secret of ${grant.id} ${replacing ? 'replaced' : 'set'}; it is not shown again.`);
      await reload();
    });
  });
  return h('details', { class: 'secret' }, h('summary', {}, verb), form);
}
