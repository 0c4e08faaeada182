import type { ClientRequest } from '../client-message.ts';
import { isHttp2Request } from '../client-message.ts';
import { upstreamRequestHeaders } from '../headers.ts';
import type { HeadStage } from './request.ts';

/** The request as it goes upstream: its normalised path, and its headers without hop-by-hop ones. */
export const outgoing: HeadStage = {
  name: 'outgoing',
  injected: false,
  run(request) {
    request.outgoing = { headers: outgoingHeaders(request.req), path: request.requestPath };
  },
};

/**
 * The request's headers as they go upstream. An HTTP/2 client's `TE: trailers` (the one TE HTTP/2
 * allows) is kept: gRPC clients send it and gRPC servers may refuse a call without it.
 */
export function outgoingHeaders(req: ClientRequest): Record<string, string | string[]> {
  const headers = upstreamRequestHeaders(req.headers);
  if (isHttp2Request(req) && req.headers.te === 'trailers') headers['te'] = 'trailers';
  return headers;
}
