import { ProxyError } from '../../errors/index.ts';
import { PURPOSE_HEADER } from '../headers.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/** Characters of a purpose kept in the audit line: a sentence, not a document. */
export const MAX_PURPOSE_CHARS = 200;

/**
 * Why the agent makes this request, as it says in X-Keyway-Purpose: recorded in the audit line as
 * `purpose`, never sent upstream (headers.ts drops keyway's own headers). A grant with
 * require_purpose refuses a request without one here; a rule with it, in the access stage.
 */
export const purpose: HeadStage = {
  name: 'purpose',
  injected: false,
  run(request) {
    const given = cleanPurpose(request.req.headers[PURPOSE_HEADER]);
    if (given !== undefined) {
      request.purpose = given;
      request.draft.event.purpose = given;
    }
    const grant = request.grant;
    if (grant?.requirePurpose && given === undefined) {
      throw purposeRequired(`grant "${grant.id}" requires a purpose`, grant.id);
    }
  },
};

export function purposeRequired(why: string, grantId: string): ProxyError {
  return new ProxyError('purpose_required', `${why}: send the header ${PURPOSE_HEADER} saying why this request is made`, {
    grant: grantId,
    hint: 'keyway fetch --purpose TEXT sets it; any client can send the header (it is removed before the request goes upstream)',
  });
}

/**
 * The header as one readable line: UTF-8 when it is (Node hands header values over as latin1),
 * without control or format characters (a line break or bidi control would forge the look of the
 * log in a terminal), spaces collapsed, cut to MAX_PURPOSE_CHARS. Blank counts as absent.
 */
export function cleanPurpose(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const raw = Array.isArray(value) ? value.join(', ') : value;
  // Header bytes arrive one per character; anything wider is already text (a caller's string).
  const bytes = !/[\u0100-\uffff]/.test(raw);
  const utf8 = bytes ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
  const text = (utf8.includes('\uFFFD') ? raw : utf8)
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (text === '') return undefined;
  return text.length <= MAX_PURPOSE_CHARS ? text : `${[...text].slice(0, MAX_PURPOSE_CHARS - 1).join('')}…`;
}

/** For the access stage: the rule that wants a purpose the request did not give. */
export function checkRulePurpose(request: StagedRequest, rule: string | undefined): void {
  if (rule !== undefined && request.purpose === undefined) throw purposeRequired(`${rule} requires a purpose`, request.grant!.id);
}
