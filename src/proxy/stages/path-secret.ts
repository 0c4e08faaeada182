import { staticCredential } from '../../credentials/providers/static.ts';
import { redactText, secretNeedles } from '../leak-guard/index.ts';
import type { HeadStage } from './request.ts';

/**
 * The audit line's path with the grant's static secret redacted, in every form the leak guard
 * knows, as soon as the grant is known (before any refusal could write the line). The line says no
 * secret is on it (docs/audit.md), and audit.export sends its path to a SIEM: an agent that writes
 * the secret into a path segment must not have it kept in the log and sent on. The request itself
 * goes as written (the upstream is the grant's own); only the record is redacted. The path is
 * ASCII (stage path percent-encodes the rest), so the leak guard's latin1 reading is exact.
 */
export const pathSecret: HeadStage = {
  name: 'path-secret',
  injected: true,
  run(request) {
    const path = request.draft.event.path;
    const grant = request.grant;
    if (path === null || path === undefined || grant === undefined) return;
    const known = staticCredential(grant.type, grant.material);
    if (known === undefined) return;
    const { text, count } = redactText(path, secretNeedles(known));
    if (count > 0) request.draft.event.path = text;
  },
};
