// A grant that may be swapped into bodies (inject: {body: true}) has its own placeholder, so that
// an agent holding several grants cannot make keyway put grant A's secret where it wrote grant B's
// placeholder: only the request's own grant's placeholder is ever replaced.

/** What `keyway env` sets in variables an SDK insists on (OPENAI_API_KEY=keyway-placeholder…). */
export const ENV_PLACEHOLDER = 'keyway-placeholder';

/**
 * Placeholders shaped like the token they stand for, for the variables whose clients check the
 * shape before they send anything: recent `gh` refuses a GH_TOKEN that is not `ghp_`/`gho_`/… plus
 * 36 letters and digits (issue 86); GitLab's and Hugging Face's CLIs look for `glpat-` and `hf_`.
 * keyway replaces the whole credential a request carries, whatever it is, so the shape only gets
 * the client to send. Every other variable gets ENV_PLACEHOLDER (the OpenAI, Anthropic and Gemini
 * SDKs and CLIs take any text).
 */
export const SHAPED_ENV_PLACEHOLDERS: Readonly<Record<string, string>> = Object.freeze({
  GH_TOKEN: 'ghp_keywayplaceholder0000000000000000000',
  GITHUB_TOKEN: 'ghp_keywayplaceholder0000000000000000000',
  GITLAB_TOKEN: 'glpat-keywayplaceholder000',
  HF_TOKEN: 'hf_keywayplaceholder000000000000000000',
});

/** The placeholder `keyway env` and `keyway run` set in `name`. */
export function envPlaceholder(name: string): string {
  return SHAPED_ENV_PLACEHOLDERS[name] ?? ENV_PLACEHOLDER;
}

/** Whether `value` is one of keyway's placeholders (an env one, shaped or not, or a grant's body placeholder) rather than a secret. */
export function isKeywayPlaceholder(value: string): boolean {
  const text = value.trim();
  return text.startsWith(ENV_PLACEHOLDER) || Object.values(SHAPED_ENV_PLACEHOLDERS).includes(text);
}
export const PLACEHOLDER_PREFIX = `${ENV_PLACEHOLDER}-`;

export function grantPlaceholder(grantId: string): string {
  return `${PLACEHOLDER_PREFIX}${grantId}`;
}

/**
 * A placeholder counts only where it is not followed by a character a grant id may hold: otherwise
 * grant `slack`'s placeholder would match inside `keyway-placeholder-slack-admin` (another grant's).
 */
function isIdChar(code: number | undefined): boolean {
  return code !== undefined && ((code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2d);
}

/** Each whole placeholder in `text` replaced by `secret` (split/join: a `$` in a secret is literal). */
export function replaceInString(text: string, placeholder: string, secret: string): { text: string; count: number } {
  let at = text.indexOf(placeholder);
  if (at === -1) return { text, count: 0 };
  let out = '';
  let from = 0;
  let count = 0;
  while (at !== -1) {
    const end = at + placeholder.length;
    if (!isIdChar(text.charCodeAt(end))) {
      out += text.slice(from, at) + secret;
      from = end;
      count++;
    }
    at = text.indexOf(placeholder, end);
  }
  return { text: out + text.slice(from), count };
}

/** The same on bytes, for text bodies and messages whose charset keyway does not decode. */
export function replaceInBytes(bytes: Buffer, placeholder: string, secret: string): { bytes: Buffer; count: number } {
  const needle = Buffer.from(placeholder);
  let at = bytes.indexOf(needle);
  if (at === -1) return { bytes, count: 0 };
  const secretBytes = Buffer.from(secret);
  const parts: Buffer[] = [];
  let from = 0;
  let count = 0;
  while (at !== -1) {
    const end = at + needle.length;
    if (!isIdChar(bytes[end])) {
      parts.push(bytes.subarray(from, at), secretBytes);
      from = end;
      count++;
    }
    at = bytes.indexOf(needle, end);
  }
  if (count === 0) return { bytes, count: 0 };
  parts.push(bytes.subarray(from));
  return { bytes: Buffer.concat(parts), count };
}
