import { ProxyError } from '../../errors/index.ts';
import { formatAuthority, originFormOf, parseAuthority, splitAbsoluteForm, type Target } from '../target.ts';
import type { HeadStage } from './request.ts';

/**
 * Requests inside a tunnel are origin-form. An absolute-form target (RFC 9112 3.2.2) is taken as
 * its path, as sent (splitAbsoluteForm: the same reading as a plain request's), if its authority is
 * the connection's target: the target's authority would win over Host at an upstream that reads
 * it, so one naming another host is refused. Anything else is passed on as is, for the path stage.
 */
export const originForm: HeadStage = {
  name: 'origin-form',
  injected: false,
  run(request) {
    const absolute = splitAbsoluteForm(request.target);
    if (!absolute) return;
    const target = request.conn.target;
    if (!namesTarget(absolute.scheme, absolute.authority, target)) {
      throw new ProxyError('host_mismatch', `the request target names another authority than the connection's target ${formatAuthority(target)}`);
    }
    request.target = originFormOf(absolute.rest);
  },
};

function namesTarget(scheme: string, authority: string, target: Target): boolean {
  try {
    const named = parseAuthority(authority, scheme === 'https' ? 443 : scheme === 'http' ? 80 : undefined);
    return named.host === target.host && named.port === target.port;
  } catch {
    return false;
  }
}
