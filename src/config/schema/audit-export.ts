// audit.export: where audit lines are sent as they are written (src/audit-export/), each target a
// format and a URL. What each format may travel over is decided here, so a wrong pairing is a config
// error naming its field rather than a sender that never connects.
import { z } from 'zod';

export const EXPORT_FORMATS = ['ocsf', 'cef', 'syslog'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The URL schemes a target may name, and which formats each carries. */
const SCHEMES: Record<string, readonly ExportFormat[]> = {
  'syslog+tcp:': ['syslog', 'cef'],
  'syslog+tls:': ['syslog', 'cef'],
  'syslog+udp:': ['syslog', 'cef'],
  'https:': ['ocsf'],
};

export const exportTargetSchema = z
  .strictObject({
    format: z.enum(EXPORT_FORMATS),
    // syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, syslog+udp://HOST:PORT (syslog, cef); https://… (ocsf).
    to: z.string().min(1).max(2048),
    // A PEM file of the CA that signed the receiver's certificate (syslog+tls, https), trusted beside
    // the system's; verification is never turned off.
    ca: z.string().min(1).optional(),
  })
  .superRefine((target, ctx) => {
    const problem = targetProblem(target.format, target.to);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['to'], message: problem });
    if (target.ca !== undefined && !/^(?:syslog\+tls|https):/.test(target.to))
      ctx.addIssue({ code: 'custom', path: ['ca'], message: 'ca applies to syslog+tls:// and https:// targets only' });
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
