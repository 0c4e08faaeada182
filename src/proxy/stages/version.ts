import { ProxyError } from '../../errors/index.ts';
import { isHttp2Request } from '../client-message.ts';
import type { HeadStage } from './request.ts';

/**
 * HTTP/1.x only. A request line without a version (`GET /x{y/1.1`) is HTTP/0.9 to llhttp: no
 * headers by that protocol's rules, yet Node reads some, and an upstream may answer it in HTTP/0.9
 * (no status line, or an `HTTP/0.9 200` one). It is a typo or an attack, never an agent.
 */
export const version: HeadStage = {
  name: 'version',
  injected: false,
  run({ req }) {
    if (req.httpVersionMajor !== 1 && !isHttp2Request(req))
      throw new ProxyError('bad_request', `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} requests are not proxied; send HTTP/1.1`);
  },
};
