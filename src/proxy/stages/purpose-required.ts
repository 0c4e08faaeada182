import { ProxyError } from '../../errors/index.ts';
import { PURPOSE_HEADER } from '../headers.ts';
import type { HeadStage } from './request.ts';

/**
 * A grant with require_purpose, or an allow rule with it that the request matched (and no rule
 * without it: access records which), lets the request through only with X-Keyway-Purpose. After
 * the lease and the rules: a request they refuse is told that first.
 */
export const purposeRequired: HeadStage = {
  name: 'purpose-required',
  injected: true,
  run(request) {
    if (request.purpose !== undefined) return;
    const grant = request.grant!;
    if (grant.requirePurpose) throw purposeMissing(`grant "${grant.id}" requires a purpose`, grant.id);
    if (request.purposeRule !== undefined) throw purposeMissing(`${request.purposeRule} requires a purpose`, grant.id);
  },
};

function purposeMissing(why: string, grantId: string): ProxyError {
  return new ProxyError('purpose_required', `${why}: send the header ${PURPOSE_HEADER} saying why this request is made`, {
    grant: grantId,
    hint: 'keyway fetch --purpose TEXT sets it; any client can send the header (it is removed before the request goes upstream)',
  });
}
