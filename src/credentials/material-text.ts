// Secret material as people paste it, read to the one thing they meant. A PEM between JSON quotes
// comes with raw line breaks (pasted from the file), or with none at all (a one-line field, such as
// the dashboard's password input, drops them as the browser must): neither is ambiguous, and
// refusing them refused the README's own mtls form. Nothing here ever quotes the text in an error.

/**
 * JSON, also when a string in it holds raw line breaks: a PEM pasted between quotes (what a person
 * does with `{"certificate":"-----BEGIN CERTIFICATE-----` and the rest) is invalid JSON, yet has one
 * reading only. Line breaks and tabs inside strings are escaped and the text is parsed again.
 * Throws JSON.parse's error (whose message may quote the text: callers replace it).
 */
export function parseSecretJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    let out = '';
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (inString && c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === '"') inString = !inString;
      out += inString && c === '\n' ? '\\n' : inString && c === '\r' ? '\\r' : inString && c === '\t' ? '\\t' : c;
    }
    if (out === text) throw err;
    return JSON.parse(out);
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----([\s\S]*?)-----END \1-----[ \t\r\n]*/g;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Each PEM block in the text rewritten as PEM is written (base64 in lines of 64, LF), when its
 * body is base64 alone: OpenSSL reads no PEM whose line breaks were dropped or turned into spaces.
 * A block with headers (a legacy encrypted key's Proc-Type) is left as it is.
 */
export function reflowPem(text: string): string {
  if (!text.includes('-----BEGIN ')) return text;
  return text.replace(PEM_BLOCK, (block, label: string, body: string) => {
    const base64 = body.replace(/\s+/g, '');
    if (!BASE64.test(base64)) return block;
    // The whitespace after the block is taken with it: one line break ends each block.
    return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
  });
}
