// The headers an https:// target sends with each POST (audit.export[N].headers): each value read
// from its secret reference at every send, so a `file:` secret replaced on disk (a rotated token) is
// used from the next batch on, as other `file:` secrets are. A value is never logged or shown: a
// failure names the header and the reference's kind of problem, never the value.

import type { ExportHeaderConfig } from '../config/schema/audit-export.ts';
import type { SecretRef } from '../config/secret-ref.ts';

/** Reads a reference as every config secret is read (config/secret-ref.ts readSecretRef, given by the app). */
export type ReadSecret = (ref: SecretRef) => string;

/** What a header value may hold: visible ASCII, space and tab (a CR, LF or NUL in a secret would split the request; a token is ASCII). */
const HEADER_VALUE = /^[\x20-\x7e\t]*$/;

export type HeaderValues = () => Record<string, string>;

/** Reads the target's headers at each call; throws a one-line error naming the header when one cannot be made. */
export function headerValues(headers: Readonly<Record<string, ExportHeaderConfig>>, readSecret: ReadSecret): HeaderValues {
  return () => {
    const out: Record<string, string> = {};
    for (const [name, header] of Object.entries(headers)) {
      let secret: string;
      try {
        secret = readSecret(header.secret);
      } catch (err) {
        // readSecretRef's message names the variable or file, never a value.
        throw new Error(`headers.${name}: ${(err as Error).message.split(' (')[0]}`);
      }
      if (!HEADER_VALUE.test(secret))
        throw new Error(`headers.${name}: the secret holds a character a header cannot carry (a newline, a control or a non-ASCII character)`);
      out[name] = header.format.replace('{secret}', () => secret);
    }
    return out;
  };
}
