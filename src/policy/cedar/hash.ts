import { createHash } from 'node:crypto';

// The policy's hash (`policy: "sha256:…"` on every audit line): of the compiled set in a canonical
// form, so that reformatting a file or adding a comment does not change it and any change to what
// a policy says does. The YAML rules' compiled text is already canonical (yaml-compile.ts builds it
// the same way every time); a Cedar policy's canonical form is its JSON (policyToJson), which keeps
// no whitespace or comment, listed by id.

/** One Cedar file policy: its `@id` (undefined without one: its FILE:LINE id moves with a comment) and its JSON form. */
export interface CanonicalPolicy {
  readonly id: string | undefined;
  readonly json: string;
}

/** `sha256:` and 64 hex digits. */
export function policyHash(yamlText: string, cedar: readonly CanonicalPolicy[]): string {
  const hash = createHash('sha256');
  hash.update('keyway policy v1\nyaml\n');
  hash.update(yamlText);
  hash.update('\ncedar\n');
  // Neither part holds a raw newline (JSON escapes its own): one line per policy, sorted.
  const lines = cedar.map((p) => `${JSON.stringify(p.id ?? '')}\t${p.json}\n`).sort();
  for (const line of lines) hash.update(line);
  return `sha256:${hash.digest('hex')}`;
}

/** Whether text is a policy hash as keyway writes it. */
export function isPolicyHash(text: unknown): text is string {
  return typeof text === 'string' && /^sha256:[0-9a-f]{64}$/.test(text);
}
