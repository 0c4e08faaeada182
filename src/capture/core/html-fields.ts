// An HTML page on a login host read for the values a browser would submit or a script would read
// by name: OAuth's response_mode=form_post answers with a page whose <form method="post"> carries
// the authorization response in hidden inputs (access_token, id_token, code, state, a JARM
// `response`), and submits itself. Read as the browser reads it: every <input>, <button>,
// <textarea>, <select>'s <option> and <meta> (name or property, and content), attribute names in
// any case, values quoted either way or not at all, character references decoded (`access&#95;token`
// is access_token). A named reference keyway does not know is kept as written: a name spelled with
// one is no name a field matches, and the text around it is still searched for token names
// (capture-answer.ts). Scripts are not run: a token a script builds is not read here.

/** One named value of the page. */
export interface HtmlField {
  readonly name: string;
  readonly value: string;
}

/**
 * CSRF fields: a token bound to the browser session that got the page, good for one form post to
 * the same site and nothing at an API. Admitted on a login page whatever their shape (GitHub's
 * pages carry authenticity_token, Django's csrfmiddlewaretoken, ASP.NET's
 * __RequestVerificationToken, Laravel's _token).
 */
export const CSRF_FIELDS: ReadonlySet<string> = new Set([
  'authenticity_token',
  'csrf_token',
  'csrf-token',
  'csrftoken',
  'csrfmiddlewaretoken',
  '_csrf',
  '_csrf_token',
  'xsrf_token',
  '_xsrf',
  '__requestverificationtoken',
  '_token',
]);

/** The named character references a form's names and values are spelled with, beside numeric ones. */
const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  lowbar: '_',
  UnderBar: '_',
  period: '.',
  hyphen: '\u2010',
  dash: '\u2010',
  colon: ':',
  sol: '/',
  equals: '=',
  num: '#',
  percnt: '%',
  plus: '+',
  comma: ',',
  semi: ';',
  excl: '!',
  quest: '?',
  commat: '@',
  lpar: '(',
  rpar: ')',
  Tab: '\t',
  NewLine: '\n',
};

/** `text` with its character references decoded, as a browser decodes an attribute value or text. */
export function decodeReferences(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(?:#[xX]([0-9a-fA-F]{1,6})|#([0-9]{1,7})|([A-Za-z][A-Za-z0-9]{1,31}));?/g, (whole, hex: string, dec: string, name: string) => {
    if (hex !== undefined || dec !== undefined) {
      const code = hex !== undefined ? Number.parseInt(hex, 16) : Number(dec);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd';
    }
    return NAMED[name] ?? whole;
  });
}

/** Every named value of the page (see the module comment), decoded. */
export function htmlFields(html: string): HtmlField[] {
  const fields: HtmlField[] = [];
  const tags = /<(input|button|textarea|option|meta|param)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
  for (const m of html.matchAll(tags)) {
    const tag = m[1]!.toLowerCase();
    const attrs = attributes(m[2]!);
    if (tag === 'meta') {
      const name = attrs.get('name') ?? attrs.get('property') ?? attrs.get('http-equiv') ?? attrs.get('itemprop');
      const content = attrs.get('content');
      if (content !== undefined) fields.push({ name: name ?? '', value: content });
      continue;
    }
    if (tag === 'textarea') {
      const end = html.toLowerCase().indexOf('</textarea', m.index + m[0].length);
      const text = html.slice(m.index + m[0].length, end === -1 ? html.length : end);
      fields.push({ name: attrs.get('name') ?? '', value: decodeReferences(text) });
      continue;
    }
    const value = attrs.get('value');
    if (value !== undefined) fields.push({ name: attrs.get('name') ?? attrs.get('id') ?? '', value });
  }
  return fields;
}

/** A tag's attributes, names lower case, values decoded. A repeated attribute: the first counts, as in a browser. */
function attributes(text: string): Map<string, string> {
  const found = new Map<string, string>();
  const attr = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of text.matchAll(attr)) {
    const name = m[1]!.toLowerCase();
    if (found.has(name)) continue;
    found.set(name, decodeReferences(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return found;
}
