import { staticCredential } from '../../credentials/providers/static.ts';
import type { Credential } from '../../credentials/material.ts';
import { PURPOSE_HEADER } from '../headers.ts';
import { redactText, secretNeedles } from '../leak-guard/index.ts';
import type { HeadStage } from './request.ts';

/** Characters of a purpose kept in the audit line: a sentence, not a document. */
export const MAX_PURPOSE_CHARS = 200;

/**
 * Why the agent makes this request, as it says in X-Keyway-Purpose: recorded in the audit line as
 * `purpose`, never sent upstream (headers.ts drops keyway's own headers). A grant's static secret
 * is redacted from it here, before any refusal could write the line; an OAuth token once it is
 * known (purpose-redaction). Whether one is required is decided after the rules (purpose-required).
 */
export const purpose: HeadStage = {
  name: 'purpose',
  injected: false,
  run(request) {
    const given = cleanPurpose(request.req.headers[PURPOSE_HEADER]);
    if (given === undefined) return;
    request.purpose = given;
    const grant = request.grant;
    const known = grant === undefined ? undefined : staticCredential(grant.type, grant.material);
    request.draft.event.purpose = recordedPurpose(given, known);
  },
};

/**
 * The purpose as the audit line records it: every form of the credential's secret redacted from the
 * whole text first, then cut (a secret straddling the cut must not leave its first part behind).
 */
export function recordedPurpose(text: string, credential: Credential | undefined): string {
  let clean = text;
  if (credential !== undefined) {
    // The leak guard reads bytes (as latin1 text): the purpose's UTF-8 bytes, and back.
    const { text: redacted, count } = redactText(Buffer.from(text, 'utf8').toString('latin1'), secretNeedles(credential));
    if (count > 0) clean = Buffer.from(redacted, 'latin1').toString('utf8');
  }
  const chars = [...clean];
  return chars.length <= MAX_PURPOSE_CHARS ? clean : `${chars.slice(0, MAX_PURPOSE_CHARS - 1).join('')}…`;
}

/** Past this many characters a purpose is not read further (the audit line keeps MAX_PURPOSE_CHARS). */
const MAX_READ_CHARS = 4096;

/**
 * The header as one readable line: UTF-8 when it is (Node hands header values over as latin1),
 * without control, format or line-separator characters (a line break or bidi control would forge
 * the look of the log in a terminal), spaces collapsed. Blank counts as absent. Not yet cut to
 * MAX_PURPOSE_CHARS: recordedPurpose does that, after redaction.
 */
export function cleanPurpose(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const raw = (Array.isArray(value) ? value.join(', ') : value).slice(0, MAX_READ_CHARS);
  // Header bytes arrive one per character; anything wider is already text (a caller's string).
  const bytes = !/[\u0100-\uffff]/.test(raw);
  const utf8 = bytes ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
  const text = (utf8.includes('\uFFFD') ? raw : utf8)
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text === '' ? undefined : text;
}
