import { redactText, secretNeedles } from '../leak-guard/index.ts';
import type { HeadStage } from './request.ts';

/**
 * Once the credential is known: a purpose that holds it (in any form the leak guard knows) is
 * recorded with it redacted. A request refused before this point never reached its credential, so
 * its purpose cannot have been copied from one keyway handed out.
 */
export const purposeRedaction: HeadStage = {
  name: 'purpose-redaction',
  injected: true,
  run(request) {
    if (request.purpose === undefined || request.issued === undefined) return;
    // The leak guard reads bytes (as latin1 text): the purpose's UTF-8 bytes, and back.
    const bytes = Buffer.from(request.purpose, 'utf8').toString('latin1');
    const { text, count } = redactText(bytes, secretNeedles(request.issued.credential));
    if (count > 0) request.draft.event.purpose = Buffer.from(text, 'latin1').toString('utf8');
  },
};
