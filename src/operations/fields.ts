// What every operation shares: who is asking (the command line or the admin API), so that a message
// names the input the way that caller wrote it (`--lease-ttl` on the command line, `lease_ttl` in a
// JSON body), and the usage error both callers map (exit 1 with one line; HTTP 400).

import { parseDuration } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';

export type Caller = 'cli' | 'api';

/**
 * An input as the caller wrote it, from its JSON path: `lease_ttl` is `--lease-ttl` on the command
 * line; `inject.format` is `--format` there.
 */
export function fieldName(path: string, caller: Caller): string {
  return caller === 'cli' ? `--${(path.split('.').pop() ?? path).replaceAll('_', '-')}` : path;
}

export function usage(message: string): KeywayError {
  return new KeywayError('usage', message);
}

/**
 * A usage error about the input's shape: a field left out, of the wrong JSON type, or unknown. The
 * command line shows it as any usage error; the admin API answers it as a malformed body (bad_request).
 */
export class MalformedInput extends KeywayError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'MalformedInput';
  }
}

/** A positive duration such as `15m`; undefined when not given. */
export function durationInput(text: string | undefined, name: string, caller: Caller): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw usage(`${fieldName(name, caller)}: expected a duration such as 15m, 1h or 7d`);
  return ms;
}
