// The application log (pino). Redaction is configured here once, so no call site has to remember to
// strip a header or a secret field before logging an object that happens to hold one.

import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export const REDACTED = '[redacted]';

// Node lower-cases incoming header names, but objects built by hand (or by other libraries) may not.
const SECRET_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'Authorization',
  'Proxy-Authorization',
  'Cookie',
  'Set-Cookie',
  'X-Api-Key',
];

const HEADER_PARENTS = ['headers', 'req.headers', 'res.headers', 'request.headers', 'response.headers', '*.headers'];

const SECRET_FIELDS = ['secret', 'token', 'accessToken', 'refreshToken', 'clientSecret', 'password', 'key'];

/** Every redact path, exported so tests and reviewers can see what is covered. */
export const REDACT_PATHS: readonly string[] = [
  ...HEADER_PARENTS.flatMap((parent) => SECRET_HEADERS.map((h) => `${parent}[${JSON.stringify(h)}]`)),
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
];

export interface AppLoggerOptions {
  /** pino level name; default 'info'. */
  level?: string;
  /** Where lines go (pino.destination(), a file stream, a test capture); default stdout. */
  destination?: DestinationStream;
}

export function createAppLogger(opts: AppLoggerOptions = {}): Logger {
  const options = {
    name: 'keyway',
    level: opts.level ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}
