// Building the page without innerHTML: every text (grant ids, hosts, paths an agent chose) goes in
// as a text node, so nothing an agent sends can become markup or script.

/** `h('button', { class: 'x', onclick: f, 'aria-label': 'y' }, 'text', child)` */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : shown(String(child)));
  }
  return el;
}

// Bidirectional-formatting characters (U+202E reverses the text after it) in what a person, a
// provider or an agent named: shown as a visible <U+XXXX>, as the CLI does
// (src/config/display-text.ts). Controls do nothing in a text node, so they are left.
const UNSAFE = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** The text with each bidi formatting character made visible. */
export function shown(text) {
  return text.replace(UNSAFE, (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);
}

/** An SVG element (the overview's chart): attributes, not inline styles, so the CSP allows it. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : String(child));
  return el;
}

/** "1 agent", "2 agents": a count with its noun in the number it takes. */
export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/**
 * A <time> saying "in 1 min 36 s" or "3 h ago", with the exact time as its title and datetime. It
 * counts on while it is on the page (see the ticker below): an approval's "expires in" stays true.
 */
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return h('span', {}, String(iso));
  return h('time', { datetime: iso, title: new Date(at).toLocaleString(), 'data-relative': '' }, relative(at - Date.now()));
}

// One timer for the whole page, not one per element: each second, every relative time is said anew.
setInterval(() => {
  for (const el of document.querySelectorAll('time[data-relative]')) {
    const text = relative(Date.parse(el.getAttribute('datetime')) - Date.now());
    if (el.textContent !== text) el.textContent = text;
  }
}, 1000);

const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g;

/**
 * A message with each ISO 8601 time in it (as the API and audit lines write them) shown as a local,
 * readable date and time, the exact time kept in the <time> element's datetime.
 */
export function localTimes(text) {
  const parts = [];
  let last = 0;
  for (const match of String(text).matchAll(ISO_TIME)) {
    const at = Date.parse(match[0]);
    if (Number.isNaN(at)) continue;
    parts.push(String(text).slice(last, match.index));
    parts.push(h('time', { datetime: match[0], title: relative(at - Date.now()) }, new Date(at).toLocaleString()));
    last = match.index + match[0].length;
  }
  parts.push(String(text).slice(last));
  return parts;
}

/**
 * "in 1 min 36 s", "in 3 h 20 min", "2 days ago". Time ahead (an expiry, a lease's end) is rounded
 * down, never up: "in 2 min" must not be said while 1 min 36 s are left.
 */
export function relative(deltaMs) {
  const s = Math.abs(deltaMs) / 1000;
  if (deltaMs >= 0) {
    const whole = Math.floor(s);
    const [d, hr, min, sec] = [Math.floor(whole / 86400), Math.floor(whole / 3600), Math.floor(whole / 60), whole % 60];
    if (whole < 1) return 'in moments';
    if (whole < 60) return `in ${sec} s`;
    if (whole < 10 * 60) return `in ${min} min${sec ? ` ${sec} s` : ''}`;
    if (whole < 90 * 60) return `in ${min} min`;
    if (whole < 36 * 3600) return `in ${hr} h${hr < 10 && min % 60 ? ` ${min % 60} min` : ''}`;
    return `in ${plural(d, 'day')}`;
  }
  if (s < 45) return 'just now';
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${plural(Math.round(s / 86400), 'day')} ago`;
}

let fade;
const FADE_MS = 5000;

/**
 * Tells screen readers (and everyone) what an action did, in the page's one status region, above
 * the section (never over its content). Errors stay until the next notice or section; the shell
 * empties it on leaving a section, as a notice is about the page it was raised on.
 */
export function notify(text, kind = 'ok') {
  const region = document.getElementById('notice');
  if (!region) return;
  clearTimeout(fade);
  region.className = `notice ${kind}`;
  region.textContent = text;
  if (kind === 'ok') fade = setTimeout(() => (region.textContent = ''), FADE_MS);
}

export function clearNotice() {
  clearTimeout(fade);
  const region = document.getElementById('notice');
  if (region) region.textContent = '';
}

/** Runs an action from a button: disables it meanwhile and reports the outcome. */
export async function act(button, work, done) {
  button.disabled = true;
  try {
    await work();
    if (done) notify(done);
  } catch (err) {
    notify(err?.hint ? `${err.message} (${err.hint})` : (err?.message ?? String(err)), 'error');
  } finally {
    button.disabled = false;
  }
}
