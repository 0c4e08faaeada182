// `keyway policy check --agent A [--grant G] METHOD URL`: one request not yet sent, read as the proxy
// would read it (the path normalised as the path stage does, the query's names only) and judged by
// judge.ts, the grant stage and the policy the proxy runs.

import { KeywayError } from '../errors/index.ts';
import { normaliseRequestTarget } from '../policy/request-path.ts';
import type { ProofRequest } from './judge.ts';

const METHOD = /^[A-Za-z]{1,20}$/;

export interface DryRunInput {
  readonly agent: string;
  readonly grant: string | undefined;
  readonly method: string;
  readonly url: string;
  readonly bodySize: number | undefined;
  readonly sourceIp: string;
  readonly time: Date;
}

/** The request the proxy would judge; KeywayError `usage` for what it would not take. */
export function dryRunRequest(input: DryRunInput): ProofRequest {
  if (!METHOD.test(input.method)) throw new KeywayError('usage', 'METHOD: expected an HTTP method such as GET or POST');
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new KeywayError('usage', 'URL: expected an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KeywayError('usage', 'URL: expected an absolute http:// or https:// URL');
  const normalised = normaliseRequestTarget(`${url.pathname}${url.search}`);
  if (!normalised.ok) throw new KeywayError('usage', `URL: keyway refuses this path (bad_request): ${normalised.reason}`);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return {
    agent: input.agent,
    grant: input.grant,
    method: input.method.toUpperCase(),
    host,
    port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
    path: normalised.path,
    query: normalised.query,
    bodySize: input.bodySize,
    time: input.time,
    sourceIp: input.sourceIp,
  };
}
