// audit.export: where audit lines are sent as they are written (src/audit-export/), each target a
// format and a URL. What each format may travel over is decided here, so a wrong pairing is a config
// error naming its field rather than a sender that never connects.
import { z } from 'zod';
import { secretRef } from './values.ts';

export const EXPORT_FORMATS = ['ocsf', 'cef', 'syslog'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The URL schemes a target may name, and which formats each carries. */
const SCHEMES: Record<string, readonly ExportFormat[]> = {
  'syslog+tcp:': ['syslog', 'cef'],
  'syslog+tls:': ['syslog', 'cef'],
  'syslog+udp:': ['syslog', 'cef'],
  'https:': ['ocsf'],
};

/**
 * Headers an https:// receiver needs (a Splunk HEC's `Authorization: Splunk TOKEN`, a bearer): each
 * value a secret reference (env:NAME, file:PATH, as every secret of the config) and a format around
 * it, `{secret}` by default. Only Authorization and X- names are admitted (ADMITTED_HEADER).
 */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
// Default deny: what a receiver's token needs is admitted (Authorization, and X- names such as
// X-Splunk-Request-Channel); everything else (framing, routing, Host, Cookie, keyway's own X-Keyway-*,
// the X-Forwarded-* a receiver may trust for the client's address) is refused.
const ADMITTED_HEADER = /^(?:authorization|x-(?!forwarded-|keyway-)[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/i;
const MAX_HEADERS = 8;

const exportHeader = z.strictObject({
  secret: secretRef,
  // Printable ASCII around {secret}, once: no CR or LF can reach the header line from the config.
  format: z
    .string()
    .max(200)
    .regex(/^[\x20-\x7e]*\{secret\}[\x20-\x7e]*$/, 'expected printable text with {secret} in it, such as "Splunk {secret}" or "Bearer {secret}"')
    .refine((f) => f.split('{secret}').length === 2, 'name {secret} once')
    .default('{secret}'),
});

export type ExportHeaderConfig = z.output<typeof exportHeader>;

const exportHeaders = z.record(z.string(), exportHeader).superRefine((headers, ctx) => {
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_HEADERS} headers` });
  const seen = new Set<string>();
  for (const name of names) {
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected an HTTP header name' });
    else if (!ADMITTED_HEADER.test(name))
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `${name} is not admitted: expected Authorization or an X- header (not X-Forwarded-*, not X-Keyway-*)`,
      });
    else if (seen.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'named twice (header names ignore case)' });
    seen.add(name.toLowerCase());
  }
});

export const exportTargetSchema = z
  .strictObject({
    format: z.enum(EXPORT_FORMATS),
    // syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, syslog+udp://HOST:PORT (syslog, cef); https://… (ocsf).
    to: z.string().min(1).max(2048),
    // A PEM file of the CA that signed the receiver's certificate (syslog+tls, https), trusted beside
    // the system's; verification is never turned off.
    ca: z.string().min(1).optional(),
    // https:// only: headers sent with each POST, their values by reference (a receiver's token).
    headers: exportHeaders.optional(),
  })
  .superRefine((target, ctx) => {
    const problem = targetProblem(target.format, target.to);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['to'], message: problem });
    if (target.ca !== undefined && !/^(?:syslog\+tls|https):/.test(target.to))
      ctx.addIssue({ code: 'custom', path: ['ca'], message: 'ca applies to syslog+tls:// and https:// targets only' });
    if (target.headers !== undefined && !target.to.startsWith('https:'))
      ctx.addIssue({ code: 'custom', path: ['headers'], message: 'headers apply to https:// targets only (syslog has no headers)' });
  });

export type ExportTargetConfig = z.infer<typeof exportTargetSchema>;

/** Why a format and URL cannot go together (null: they can). */
export function targetProblem(format: ExportFormat, to: string): string | null {
  let url: URL;
  try {
    url = new URL(to);
  } catch {
    return `not a URL: expected syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, syslog+udp://HOST:PORT or https://…`;
  }
  const carries = SCHEMES[url.protocol];
  if (carries === undefined)
    return `unknown scheme ${JSON.stringify(url.protocol.slice(0, 20))}: expected syslog+tcp://, syslog+tls://, syslog+udp:// or https://`;
  if (!carries.includes(format)) return `${format} does not go over ${url.protocol}// (${url.protocol}// carries ${carries.join(', ')})`;
  // The URL is written in status and on the cursor file: a secret in it would be too.
  if (url.username !== '' || url.password !== '') return 'a user or password in the URL is refused (it would be shown in status)';
  if (url.hostname === '') return 'the URL names no host';
  if (url.protocol !== 'https:') {
    if (url.port === '') return `${url.protocol}// needs a port (HOST:PORT)`;
    if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') return `${url.protocol}// takes HOST:PORT only`;
  } else if (url.hash !== '') return 'an https:// target takes no #fragment';
  return null;
}
