import type { GrantType } from '../../config/index.ts';
import { isBlankSecret } from '../../config/index.ts';
import { KeywayError } from '../../errors/index.ts';

// The types whose secret is one line, sent as it is: bearer (Authorization: Bearer), api_key (where
// its inject settings say), jwt (a token the user has; its exp is read, and it is never sent past it).

export function oneLine(type: GrantType, text: string): string {
  if (isBlankSecret(text) || /[\r\n]/.test(text)) throw new KeywayError('usage', `a ${type} secret is one non-empty line`);
  return text;
}
