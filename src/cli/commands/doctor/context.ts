// What every doctor check works from (the parsed command line, the proxy and the test target) and
// what each one returns, with the small helpers they share.

import type { IncomingMessage } from 'node:http';
import type { Config, ListenAddress } from '../../../config/index.ts';
import type { Args } from '../../args.ts';
import type { CommandIO } from '../../io.ts';

/** warn: works, but something will go around keyway (does not fail doctor). */
export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

export interface Target {
  url: URL;
  host: string;
  port: number;
  /** true: keyway.internal, answered by keyway itself; false: a host a grant covers (--url). */
  selfCheck: boolean;
}

export interface Context {
  config: Config;
  io: CommandIO;
  args: Args;
  timeoutMs: number;
  agent: { id: string; key: string } | undefined;
  proxy: ListenAddress;
  target: Target;
  results: CheckResult[];
}

export const MAX_OUTPUT = 64 * 1024;

export async function readBody(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const buf = chunk as Buffer;
    if (size < max) chunks.push(buf.subarray(0, max - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' ? e.code : (e?.message?.split('\n')[0] ?? String(err));
}
