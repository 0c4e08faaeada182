// Text a person sets (a grant's labels, an injection format, scopes) and later reads back in a
// terminal or the dashboard. Control characters could rewrite the terminal; bidirectional controls
// (U+202E RIGHT-TO-LEFT OVERRIDE and friends) reverse how the text after them is shown, so a label
// could make a listing say what it does not ("Trojan Source", CVE-2021-42574). Neither has a use in
// such fields: they are refused where the text comes in, and shown escaped where text stored
// earlier (or named by a provider, such as an account) goes out.

/** C0 and C1 controls, line and paragraph separators, and the Unicode bidirectional formatting characters. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

/** The reason a text cannot be shown as it is, for an error message; undefined when it can. */
export function unsafeDisplayText(text: string): string | undefined {
  const found = UNSAFE.exec(text);
  if (!found) return undefined;
  return `it holds ${codePoint(found[0])}, a control or bidirectional-formatting character`;
}

/** The text with each unsafe character written as a visible `<U+XXXX>`. */
export function displaySafe(text: string): string {
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, (c) => `<${codePoint(c)}>`) : text;
}

function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}
