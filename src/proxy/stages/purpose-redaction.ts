import type { HeadStage } from './request.ts';
import { recordedPurpose } from './purpose.ts';

/**
 * Once the credential is known (an OAuth token is only known now): the purpose is recorded with it
 * redacted, in any form the leak guard knows. A static secret was redacted already (stage purpose).
 */
export const purposeRedaction: HeadStage = {
  name: 'purpose-redaction',
  injected: true,
  run(request) {
    if (request.purpose === undefined || request.issued === undefined) return;
    request.draft.event.purpose = recordedPurpose(request.purpose, request.issued.credential);
  },
};
