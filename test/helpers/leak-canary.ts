// Every form of a planted secret a test looks for in the bytes a client received. Written apart
// from src/proxy/leak-guard/needles.ts on purpose: a test that reused the guard's own list would
// only check the guard against itself.

/** The stable base64 characters of `secret` when it starts `align` bytes into a 3-byte group. */
export function base64Core(secret: Buffer, align: number): string {
  const encoded = Buffer.concat([Buffer.alloc(align, 0xff), secret, Buffer.alloc(3, 0xff)]).toString('base64');
  // Characters whose 6 bits all lie inside the secret's bytes.
  const start = Math.ceil((align * 8) / 6);
  const end = Math.floor(((align + secret.length) * 8) / 6);
  return encoded.slice(start, end);
}

export function canaryForms(secret: string): Record<string, string> {
  const bytes = Buffer.from(secret);
  const b64 = bytes.toString('base64');
  const url = (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const forms: Record<string, string> = {
    raw: secret,
    'raw, first half': secret.slice(0, Math.ceil(secret.length / 2)),
    'raw, second half': secret.slice(Math.floor(secret.length / 2)),
    hex: bytes.toString('hex'),
    HEX: bytes.toString('hex').toUpperCase(),
    base64: b64,
    base64url: url(b64),
    percent: encodeURIComponent(secret),
    form: new URLSearchParams({ s: secret }).toString().slice(2),
    'json slashes': secret.replace(/\//g, '\\/'),
    'json string': JSON.stringify(secret).slice(1, -1),
    'json string, slashes': JSON.stringify(secret).slice(1, -1).replace(/\//g, '\\/'),
    'percent, every byte': [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join(''),
    'percent, every byte, lower': [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
    'unicode escapes': [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    'unicode escapes, upper': [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`).join(''),
  };
  for (let align = 0; align < 3; align++) {
    forms[`base64 core @${align}`] = base64Core(bytes, align);
    forms[`base64url core @${align}`] = url(base64Core(bytes, align));
  }
  return forms;
}

/** The name of the first form of `secret` found in `bytes`, or undefined: what a test asserts on. */
export function findLeak(bytes: Buffer | string, secret: string): string | undefined {
  const haystack = Buffer.isBuffer(bytes) ? bytes.toString('latin1') : bytes;
  // The base64 forms also with line breaks taken out: wrapped in lines (MIME, PEM), they still give the secret.
  const unwrapped = haystack.replace(/[\r\n]/g, '');
  for (const [name, form] of Object.entries(canaryForms(secret))) {
    if (form.length >= 8 && haystack.includes(form)) return name;
    if (form.length >= 8 && name.startsWith('base64') && unwrapped.includes(form)) return `${name}, across line breaks`;
  }
  return undefined;
}
